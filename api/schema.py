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
