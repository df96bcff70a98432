"""One domain error type with stable machine codes.

Services raise these; the API's exception handler maps them to JSON ``{"code", "message",
"fields"}`` (409 for a broken rule, 400 for malformed input) and the admin shows ``message``.
"""

from collections.abc import Mapping

from core.error_codes import ErrorCode

__all__ = ["DomainError", "ErrorCode", "InvalidInput", "PermissionDenied", "RuleViolation", "require_permission"]


class DomainError(Exception):
    """A request the domain refuses. ``code`` is stable: clients branch on it."""

    status_code = 409
    default_code = ErrorCode.RULE_VIOLATION

    def __init__(self, code: ErrorCode | None = None, message: str = "", fields: Mapping[str, list[str]] | None = None):
        self.code = str(code or self.default_code)  # the wire value, a plain string
        self.message = message or self.code.replace("_", " ")
        self.fields = dict(fields or {})
        super().__init__(self.message)

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "fields": self.fields}


class RuleViolation(DomainError):
    """A safety or workflow rule forbids the action now (HTTP 409)."""

    status_code = 409


class InvalidInput(DomainError):
    """The request itself is malformed or out of range (HTTP 400)."""

    status_code = 400
    default_code = ErrorCode.INVALID


class PermissionDenied(DomainError):
    """The acting user lacks the role the action needs (HTTP 403)."""

    status_code = 403
    default_code = ErrorCode.PERMISSION_DENIED


def require_permission(user, perm: str, action: str) -> None:
    """Services check the acting user's role themselves: the admin, the API and scripts share the check."""
    if not user.has_perm(perm):
        raise PermissionDenied(ErrorCode.PERMISSION_DENIED, f"Your role does not allow you to {action}.")
