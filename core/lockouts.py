"""Unlocking an account before its lockout runs out: one service for both locks, each release recorded.

Two locks hold off password guessing: the admin and dashboard login (django-axes: 5 wrong passwords per
username and address lock that pair for ``AXES_COOLOFF_MINUTES``) and signing (5 wrong passwords in 30
minutes; ``safety.services.signatures``). A data manager releases either with a reason; the
``LockoutRelease`` row is the audit record (who, whose, which, when, why) and is never changed.
"""

from axes.utils import reset as axes_reset
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from core.errors import ErrorCode, InvalidInput, require_permission
from core.models import LockoutRelease

__all__ = ["latest_release", "lockout_release"]


def lockout_release(*, kind: str, username: str, by, reason: str) -> LockoutRelease:
    require_permission(by, "core.release_lockout", "unlock accounts (data managers only)")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(ErrorCode.REASON_REQUIRED, "Give the reason for unlocking.", {"reason": ["Required."]})
    if kind not in LockoutRelease.Kind.values:
        raise InvalidInput(ErrorCode.INVALID, "Unlock the login or signing.", {"kind": ["login or signing"]})
    user = get_user_model().objects.filter(username=username).first()
    if user is None and kind == LockoutRelease.Kind.SIGNING:
        raise InvalidInput(ErrorCode.INVALID, f"There is no user {username!r}.", {"username": ["No such user."]})
    with transaction.atomic():
        release = LockoutRelease.objects.create(
            kind=kind, username=username, user=user, released_by=by, released_at=timezone.now(), reason=reason
        )
        if kind == LockoutRelease.Kind.LOGIN:
            axes_reset(username=username)  # every address's failures for that username
    return release


def latest_release(*, user, kind: str) -> QuerySet:
    """The time ``user``'s lock of ``kind`` was last released, as a one-row query (empty if never) for a
    subquery: the lock's own count reads it in the same query."""
    return LockoutRelease.objects.filter(user=user, kind=kind).order_by("-released_at").values("released_at")[:1]
