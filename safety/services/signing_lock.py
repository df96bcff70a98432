"""The signing lock: 5 wrong passwords in 30 minutes lock a member's signing (21 CFR 11.300(d): attempts at
unauthorised use are detected and acted on). The refusal says how many tries are left and, once locked, until
when and how a data manager unlocks it (``core.lockouts.lockout_release``, kind *signing*, audited): only
wrong passwords after the member's latest release count."""

from datetime import datetime, timedelta

from django.db.models import Exists, Q, Subquery
from django.utils import timezone

from core.errors import ErrorCode, PermissionDenied
from core.lockouts import latest_release
from core.models import LockoutRelease
from safety.models import SignatureFailure

SIGNING_LOCKOUT_FAILURES = 5
SIGNING_LOCKOUT_MINUTES = 30
UNLOCK_HINT = "A data manager can unlock it now: System → Lockout releases → Add (kind: signing), with a reason."


def _counted_failures(user, now: datetime) -> list[datetime]:
    """The latest wrong passwords inside the window and after the user's latest signing release (one query)."""
    since = now - timedelta(minutes=SIGNING_LOCKOUT_MINUTES)
    release = latest_release(user=user, kind=LockoutRelease.Kind.SIGNING)
    failures = SignatureFailure.objects.filter(user=user, at__gt=since).filter(
        Q(at__gt=Subquery(release)) | ~Exists(release)
    )
    return list(failures.order_by("-at").values_list("at", flat=True)[:SIGNING_LOCKOUT_FAILURES])


def signing_tries_left(user) -> int:
    return max(0, SIGNING_LOCKOUT_FAILURES - len(_counted_failures(user, timezone.now())))


def refuse_if_signing_locked(user) -> None:
    now = timezone.now()
    failures = _counted_failures(user, now)
    if len(failures) >= SIGNING_LOCKOUT_FAILURES:
        until = timezone.localtime(failures[-1] + timedelta(minutes=SIGNING_LOCKOUT_MINUTES))
        raise PermissionDenied(
            ErrorCode.SIGNING_LOCKED,
            f"{SIGNING_LOCKOUT_FAILURES} wrong passwords in {SIGNING_LOCKOUT_MINUTES} minutes: signing is locked "
            f"until {until:%Y-%m-%d %H:%M %Z}. {UNLOCK_HINT}",
        )


def wrong_password_refusal(user) -> PermissionDenied:
    """The refusal of a wrong password, after it was logged: with the tries left before the lock."""
    left = signing_tries_left(user)
    if left:
        then = (
            f"{left} {'try' if left == 1 else 'tries'} left before signing locks for {SIGNING_LOCKOUT_MINUTES} minutes."
        )
    else:
        then = f"Signing is now locked for {SIGNING_LOCKOUT_MINUTES} minutes. {UNLOCK_HINT}"
    return PermissionDenied(
        ErrorCode.WRONG_PASSWORD,
        f"The password is not correct: nothing was signed. {then}",
        {"password": ["Incorrect."]},
    )
