"""API tokens (django-rest-knox): issued and revoked here, and nowhere else.

Only a SHA-512 digest of a token is stored (``knox.AuthToken.digest``); the token itself is shown once, to
whoever issued it. Every token expires: sponsors' after ``API_TOKEN_TTL_SPONSOR_DAYS`` (90), every other
account's after ``API_TOKEN_TTL_STAFF_DAYS`` (30), since staff tokens can write. Revoking deletes the row, so
the token no longer authenticates. Both leave a history row (``core.HistoricalAuthToken``) with who and why.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone
from knox.models import AuthToken, get_digest_token
from knox.settings import CONSTANTS

from core.auth_backends import permissions_column_sql, remember_permissions
from core.errors import ErrorCode, InvalidInput, PermissionDenied, RuleViolation, require_permission
from core.history import audit
from core.roles import SPONSOR
from core.statements import planned_once

__all__ = ["token_candidates", "token_is_expired", "token_issue", "token_lifetime", "token_revoke"]


def token_lifetime(user) -> timedelta:
    """Sponsors (read-only dashboards and nothing else) get the longer lifetime; any other account the shorter."""
    names = {group.name for group in user.groups.all()}
    if names == {SPONSOR} and not user.is_staff and not user.is_superuser:
        return timedelta(days=settings.API_TOKEN_TTL_SPONSOR_DAYS)
    return timedelta(days=settings.API_TOKEN_TTL_STAFF_DAYS)


# The token lookup of every API request in plain SQL: the rows with this key, each with its user's columns,
# both in their models' field order (tests/api/test_tokens.py checks them against the models), then the
# user's permissions (``core.auth_backends.permissions_column_sql``).
CANDIDATES_SQL = """
SELECT t.digest, t.token_key, t.user_id, t.created, t.expiry,
       u.id, u.password, u.last_login, u.is_superuser, u.username, u.first_name, u.last_name, u.email,
       u.is_staff, u.is_active, u.date_joined,
       {permissions}
FROM knox_authtoken t JOIN auth_user u ON u.id = t.user_id
WHERE t.token_key = %(key)s
"""


def _from_row(model, values):
    """An instance of ``model`` from its columns, converted as the ORM converts them (SQLite's dates, booleans)."""
    converted = []
    for field, value in zip(model._meta.concrete_fields, values, strict=True):
        column = field.get_col(model._meta.db_table)
        for convert in connection.ops.get_db_converters(column) + column.get_db_converters(connection):
            value = convert(value, column, connection)
        converted.append(value)
    return model.from_db(connection.alias, [field.attname for field in model._meta.concrete_fields], converted)


def token_candidates(token_key: str) -> list[AuthToken]:
    """The tokens whose key (a token's first characters) is ``token_key``, each with its user: what
    ``AuthToken.objects.filter(token_key=…).select_related("user")`` reads, without building the queryset on
    every request, and each user's permissions for the request's checks. The caller compares digests;
    nothing about a token or its user is cached beyond the request."""
    width = len(AuthToken._meta.concrete_fields)
    with planned_once() as cursor:
        cursor.execute(CANDIDATES_SQL.format(permissions=permissions_column_sql("u")), {"key": token_key})
        rows = cursor.fetchall()
    tokens = []
    for *row, permissions in rows:
        token = _from_row(AuthToken, row[:width])
        token.user = _from_row(get_user_model(), row[width:])
        remember_permissions(token.user, permissions)
        tokens.append(token)
    return tokens


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
