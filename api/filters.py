"""Query parameters checked like a request body: a bad value is a 400 with the field's message."""

from rest_framework import serializers


def validated_query(serializer_class: type[serializers.Serializer], request, *, skip_none: bool = False) -> dict:
    """The request's query parameters validated by ``serializer_class`` (``skip_none``: drop the unset ones)."""
    filters = serializer_class(data=request.query_params)
    filters.is_valid(raise_exception=True)
    if skip_none:
        return {k: v for k, v in filters.validated_data.items() if v is not None}
    return filters.validated_data
