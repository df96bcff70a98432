"""One domain error type with stable machine codes.

Services raise these; the API's exception handler maps them to JSON ``{"code", "message",
"fields"}`` (409 for a broken rule, 400 for malformed input) and the admin shows ``message``.
"""

from collections.abc import Mapping


class DomainError(Exception):
    """A request the domain refuses. ``code`` is stable: clients branch on it."""

    status_code = 409
    default_code = "rule_violation"

    def __init__(self, code: str | None = None, message: str = "", fields: Mapping[str, list[str]] | None = None):
        self.code = code or self.default_code
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
    default_code = "invalid"


class PermissionDenied(DomainError):
    """The acting user lacks the role the action needs (HTTP 403)."""

    status_code = 403
    default_code = "permission_denied"


def require_permission(user, perm: str, action: str) -> None:
    """Services check the acting user's role themselves: the admin, the API and scripts share the check."""
    if not user.has_perm(perm):
        raise PermissionDenied("permission_denied", f"Your role does not allow you to {action}.")
