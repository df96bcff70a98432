"""API tokens (django-rest-knox): issued and revoked here, and nowhere else.

Only a SHA-512 digest of a token is stored (``knox.AuthToken.digest``); the token itself is shown once, to
whoever issued it. Every token expires: sponsors' after ``API_TOKEN_TTL_SPONSOR_DAYS`` (90), every other
account's after ``API_TOKEN_TTL_STAFF_DAYS`` (30), since staff tokens can write. Revoking deletes the row, so
the token no longer authenticates. Both leave a history row (``core.HistoricalAuthToken``) with who and why.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from knox.models import AuthToken, get_digest_token
from knox.settings import CONSTANTS

from core.errors import ErrorCode, InvalidInput, PermissionDenied, RuleViolation, require_permission
from core.history import audit
from core.roles import SPONSOR

__all__ = ["token_is_expired", "token_issue", "token_lifetime", "token_revoke"]


def token_lifetime(user) -> timedelta:
    """Sponsors (read-only dashboards and nothing else) get the longer lifetime; any other account the shorter."""
    names = {group.name for group in user.groups.all()}
    if names == {SPONSOR} and not user.is_staff and not user.is_superuser:
        return timedelta(days=settings.API_TOKEN_TTL_SPONSOR_DAYS)
    return timedelta(days=settings.API_TOKEN_TTL_STAFF_DAYS)


def token_is_expired(token: AuthToken, *, now=None) -> bool:
    return token.expiry is not None and token.expiry <= (now or timezone.now())


def token_issue(*, user, by=None, reason: str = "") -> tuple[AuthToken, str]:
    """A new token for ``user``. Returns the row and the token, which is not stored and cannot be shown again.

    ``by`` is the data manager or superuser issuing it; ``None`` only from the command line
    (``create_role_user --token``), whose operator has the server already.
    """
    if by is not None:
        require_permission(by, "core.issue_apitoken", "issue API tokens (data managers only)")
    if not user.is_active:
        raise PermissionDenied(ErrorCode.TOKEN_ISSUE_REFUSED, f"{user.get_username()} is inactive: no token.")
    if user.is_superuser and by is not None and not by.is_superuser:
        raise PermissionDenied(ErrorCode.TOKEN_ISSUE_REFUSED, "Only a superuser may issue a superuser's token.")
    digest, secret = get_digest_token()
    with transaction.atomic():
        token = AuthToken(
            digest=digest,
            token_key=secret[: CONSTANTS.TOKEN_KEY_LENGTH],
            user=user,
            expiry=timezone.now() + token_lifetime(user),
        )
        audit(token, by=by, reason=reason.strip() or f"API token issued for {user.get_username()}")
        token.save(force_insert=True)
    return token, secret


def token_revoke(*, token: AuthToken, by, reason: str) -> None:
    """The token stops authenticating at once (its row is deleted)."""
    require_permission(by, "core.revoke_apitoken", "revoke API tokens (data managers only)")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(
            ErrorCode.REASON_REQUIRED, "Give the reason for revoking the token.", {"reason": ["Required."]}
        )
    with transaction.atomic():
        # knox's model, not the admin's proxy (the history is registered on knox's model), and locked.
        token = AuthToken.objects.select_for_update().filter(pk=token.pk).first()
        if token is None:
            raise RuleViolation(ErrorCode.RULE_VIOLATION, "This token is already revoked.")
        audit(token, by=by, reason=reason)
        token.delete()
