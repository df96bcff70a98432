"""The audit trail: every clinical model keeps who, when, what changed and why.

``audited_history()`` is the one way a model gets its history table; services pass the acting
user and the reason with ``audit()`` before saving. Code that acts for nobody in particular (a
management command, a beat task) runs inside ``acting_as(system_actor(...))``, so every history
row it writes names that actor. History rows are append-only (``core.append_only``): nothing
updates or deletes them, and a user named in them can never be deleted (``history_user`` is
``PROTECT``; users are deactivated instead).
"""

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

# The reason every automatic change (a beat task's sweep, a consequence the system draws) starts with.
AUTOMATIC = "automatic"

# (user, reason) that history rows take when their instance names none: set by ``acting_as``.
_acting: ContextVar[tuple | None] = ContextVar("acting", default=None)


class AuditedRecords(HistoricalRecords):
    """simple-history's records with three changes for a Part 11 trail.

    - ``history_user`` is ``PROTECT`` (simple-history uses ``SET_NULL``): deleting a user can never
      erase "who" from a history row.
    - The acting user and reason of ``acting_as`` apply when the instance carries none.
    - A save that only touches ``skip_fields`` (``last_login`` on every login) writes no row.
    """

    def __init__(self, *args, skip_fields: tuple[str, ...] = (), **kwargs):
        kwargs.setdefault("history_change_reason_field", models.TextField(null=True, blank=True))
        self.skip_fields = frozenset(skip_fields)
        super().__init__(*args, **kwargs)

    def _get_history_user_fields(self):
        return {
            "history_user": models.ForeignKey(
                self.user_model or settings.AUTH_USER_MODEL,
                null=True,
                related_name=self.user_related_name,
                on_delete=models.PROTECT,
                db_constraint=self.user_db_constraint,
            )
        }

    def post_save(self, instance, created, using=None, **kwargs):
        fields = kwargs.get("update_fields")
        if not created and fields and self.skip_fields and set(fields) <= self.skip_fields:
            return
        super().post_save(instance, created, using=using, **kwargs)

    def get_history_user(self, instance):
        if not hasattr(instance, "_history_user") and _acting.get() is not None:
            return _acting.get()[0]
        return super().get_history_user(instance)

    def get_change_reason_for_object(self, instance, history_type, using):
        reason = super().get_change_reason_for_object(instance, history_type, using)
        if not reason and _acting.get() is not None:
            return _acting.get()[1]
        return reason


def audited_history(**kwargs) -> HistoricalRecords:
    """The history of an audited model, with a free-text reason for change (Part 11 audit trail)."""
    return AuditedRecords(**kwargs)


def audit(instance: models.Model, *, by=None, reason: str | None = None) -> models.Model:
    """Attach who and why to ``instance`` for the history row its next save writes."""
    if by is not None:
        instance._history_user = by
    if reason:
        instance._change_reason = reason
    return instance


def acting_user_and_reason() -> tuple:
    """The (user, reason) of the enclosing ``acting_as`` block, or (None, "") outside one: for bulk history
    rows, which no instance's save writes."""
    return _acting.get() or (None, "")


@contextmanager
def acting_as(user, reason: str = "") -> Iterator[None]:
    """Inside the block, history rows whose instance names no user (or no reason) take these."""
    token = _acting.set((user, reason))
    try:
        yield
    finally:
        _acting.reset(token)


def automatic(detail: str) -> str:
    """The reason of an automatic change: ``automatic: <what the system found>``."""
    return f"{AUTOMATIC}: {detail}"


def audited_bulk_update(objs: Sequence[models.Model], fields: Iterable[str]) -> None:
    """Save ``fields`` of many rows in one UPDATE per batch, with one history row each (who and why from
    ``audit()`` on each object)."""
    if objs:
        bulk_update_with_history(list(objs), type(objs[0]), list(fields), batch_size=500)


def audited_bulk_create(objs: Sequence[models.Model]) -> list[models.Model]:
    """Insert many rows in one INSERT per batch, with one history row each (who and why from ``audit()``)."""
    if not objs:
        return []
    return bulk_create_with_history(list(objs), type(objs[0]), batch_size=500)
