"""The audit trail: every clinical model keeps who, when, what changed and why.

``audited_history()`` is the one way a model gets its history table; services pass the acting
user and the reason with ``audit()`` before saving.
"""

from collections.abc import Iterable, Sequence

from django.db import models
from simple_history.models import HistoricalRecords
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

# The reason every automatic change (a beat task's sweep, a consequence the system draws) starts with.
AUTOMATIC = "automatic"


def audited_history(**kwargs) -> HistoricalRecords:
    """HistoricalRecords with a free-text reason for change (Part 11 audit trail)."""
    kwargs.setdefault("history_change_reason_field", models.TextField(null=True, blank=True))
    return HistoricalRecords(**kwargs)


def audit(instance: models.Model, *, by=None, reason: str | None = None) -> models.Model:
    """Attach who and why to ``instance`` for the history row its next save writes."""
    if by is not None:
        instance._history_user = by
    if reason:
        instance._change_reason = reason
    return instance


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
