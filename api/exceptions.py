"""The one place where errors become JSON: ``{"code", "message", "fields"}``.

Domain errors keep their status (409 for a broken rule, 400 for malformed input); DRF's own
errors get a stable code too. A database integrity error that slipped past a service's checks is
reported as 409 ``conflict`` and the transaction is rolled back: never a 500 for a rule.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from core.errors import DomainError, ErrorCode


def _field_messages(detail) -> dict:
    if isinstance(detail, dict):
        return {str(k): _messages(v) for k, v in detail.items()}
    return {}


def _messages(value) -> list[str]:
    if isinstance(value, list):
        out = []
        for item in value:
            out += _messages(item) if isinstance(item, list | dict) else [str(item)]
        return out
    if isinstance(value, dict):
        return [f"{k}: {m}" for k, v in value.items() for m in _messages(v)]
    return [str(value)]


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    """The one shape of every error the API answers with (also outside DRF: ``api.handlers``)."""
    return {"code": str(code), "message": message, "fields": fields or {}}


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        set_rollback()
        return Response(exc.as_dict(), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, IntegrityError):
        set_rollback()
        return Response(
            error_body(
                ErrorCode.CONFLICT, "The request conflicts with the current state of the record; nothing was saved."
            ),
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, exceptions.ValidationError):
        set_rollback()
        fields = _field_messages(exc.detail)
        if fields:
            message = "; ".join(f"{k}: {' '.join(v)}" for k, v in fields.items())
        else:
            message = " ".join(_messages(exc.detail))
            fields = {}
        return Response(error_body(ErrorCode.INVALID, message, fields), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.APIException):
        set_rollback()
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else ErrorCode.ERROR
        return Response(error_body(code, " ".join(_messages(exc.detail))), status=exc.status_code, headers=headers)
    return None
