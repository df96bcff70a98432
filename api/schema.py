"""What the OpenAPI schema says about errors (the exception handler in ``api.exceptions`` writes them)."""

from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema_serializer
from rest_framework import serializers

from core.errors import ErrorCode


def _every_code() -> str:
    """The ``code`` field's description: every code of the registry, by HTTP status."""
    statuses = sorted({status for code in ErrorCode for status in code.statuses})
    by_status = "; ".join(
        f"{status}: " + ", ".join(f"`{code}`" for code in ErrorCode.for_status(status)) for status in statuses
    )
    return f"Stable machine code (clients branch on it; docs/api.md says what each means). {by_status}."


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text=_every_code())
    message = serializers.CharField(help_text="Human-readable explanation.")
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


ERROR_RESPONSES = {
    400: OpenApiResponse(ErrorSerializer, description="Malformed request (code `invalid` with field messages)."),
    401: OpenApiResponse(ErrorSerializer, description="No, bad or revoked token; `token_expired`."),
    403: OpenApiResponse(ErrorSerializer, description="The role lacks the permission (`permission_denied`)."),
    404: OpenApiResponse(ErrorSerializer, description="No such record."),
    409: OpenApiResponse(ErrorSerializer, description="A rule forbids it now (e.g. `cohort_full`, `no_consent`)."),
}
# The statuses every operation may answer whatever its view declares, and when (``document_error_responses``).
GENERAL_ERRORS = {
    400: "Malformed request: a body or a query parameter the API refuses (code `invalid` with field messages, "
    "or a specific code).",
    401: ERROR_RESPONSES[401].description,
    403: "The role lacks the permission (`permission_denied`), or the record's site or trial is not assigned to "
    "the user (`not_assigned`).",
    404: "No such record, or one outside the reader's sites or trials (`not_found`).",
    409: "A rule forbids it now (e.g. `cohort_full`, `no_consent`), or a database constraint refused the write "
    "(`conflict`); nothing was saved.",
    413: "The body is over 1 MiB (`payload_too_large`); it was not read.",
    415: "The body is not JSON (`unsupported_media_type`): the API takes `application/json` only.",
    429: "Too many failed token authentications from this address (`throttled`); wait `Retry-After` seconds.",
}
_WRITES = {"post", "put", "patch", "delete"}
_PAGINATION = {"limit", "offset"}


def error_responses(*statuses: int) -> dict:
    """The documented error responses of an operation, e.g. ``{201: …, **error_responses(400, 403, 409)}``."""
    return {status: ERROR_RESPONSES[status] for status in statuses}


def by_role(*, name: str, staff, sponsor, many: bool = False) -> PolymorphicProxySerializer:
    """A response whose shape depends on the reader: ``oneOf`` the staff and the sponsor component.

    The sponsor components are closed (``additionalProperties: false``, set by ``close_sponsor_components``), so a
    staff body, which has the identifiers, matches only the staff component and a sponsor body only the sponsor
    one: exactly one of the two, as ``oneOf`` requires.
    """
    return PolymorphicProxySerializer(
        component_name=name, serializers=[staff, sponsor], resource_type_field_name=None, many=many
    )


SPONSOR_COMPONENTS: set[str] = set()


def sponsor_component(name: str):
    """Name a serializer's component ``name`` and mark it as a sponsor's shape (closed in the schema)."""
    SPONSOR_COMPONENTS.add(name)
    return extend_schema_serializer(component_name=name)


def close_sponsor_components(result, generator, request, public):
    """Postprocessing hook: a sponsor component allows no property it does not list (see ``by_role``)."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name in SPONSOR_COMPONENTS:
            component["additionalProperties"] = False
    return result


def _applicable(path: str, method: str, operation: dict) -> set[int]:
    """The error statuses an operation can answer: from its method, path parameters, body and query."""
    statuses = {401, 403, 429}  # every route authenticates (a failed token counts towards the throttle)
    body = "requestBody" in operation
    query = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"} - _PAGINATION
    if "{" in path:
        statuses.add(404)
    if body or query:
        statuses.add(400)
    if method in _WRITES:
        statuses |= {409, 413}
    if body:
        statuses.add(415)
    return statuses


def document_error_responses(result, generator, request, public):
    """Postprocessing hook: every ``/api/`` operation documents the error responses it can answer.

    Each is the one error body (``Error``: ``{code, message, fields}``); what a view declares itself (a more
    specific description) is kept.
    """
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status in sorted(_applicable(path, method, operation)):
                responses.setdefault(str(status), {"description": GENERAL_ERRORS[status], "content": error})
            operation["responses"] = dict(sorted(responses.items()))
    return result
