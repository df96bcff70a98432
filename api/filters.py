"""The API's list filters: django-filter FilterSets, so that each filter is a query parameter of the schema.

A bad value is a 400 ``invalid`` naming the parameter (the backend raises DRF's ``ValidationError``; the
exception handler writes the error body), never silently ignored: ids are 1 to 2⁶³−1, text has no NUL byte
and a length limit, a yes/no filter takes true/false (and the like) only, a choice one of its choices.
Filters apply to the list action only (a detail's lookup is not narrowed by a query string), and none of them
queries the database to validate (no ModelChoiceFilter): a list takes the same queries with or without them.

``validated_query`` stays for the query parameters of an action that is not a list (``infusions/hold/``).
"""

import django_filters
from django import forms
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.fields import MAX_ID
from core.errors import ErrorCode

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def validated_query(serializer_class: type[serializers.Serializer], request, *, skip_none: bool = False) -> dict:
    """The request's query parameters validated by ``serializer_class`` (``skip_none``: drop the unset ones)."""
    filters = serializer_class(data=request.query_params)
    filters.is_valid(raise_exception=True)
    if skip_none:
        return {k: v for k, v in filters.validated_data.items() if v is not None}
    return filters.validated_data


class ListFilterBackend(DjangoFilterBackend):
    """django-filter's backend for the list action only; an invalid filter is a 400 (``raise_exception``)."""

    def filter_queryset(self, request, queryset, view):
        if getattr(view, "action", "list") != "list":
            return queryset
        return super().filter_queryset(request, queryset, view)


class _YesNoField(forms.Field):
    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise forms.ValidationError("Must be true or false.", code=ErrorCode.INVALID)


@extend_schema_field(OpenApiTypes.BOOL)
class YesNoFilter(django_filters.Filter):
    """true/false (1/0, yes/no, on/off); empty: no filter; anything else a 400 (django-filter's BooleanFilter
    would read a bad value as "no filter")."""

    field_class = _YesNoField


@extend_schema_field({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.Filter):
    """A record's id: a whole number from 1 to 2⁶³−1 (a larger one would overflow the database's integer)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": 5})
class GradeFilter(django_filters.Filter):
    """A CTCAE grade, 1 to 5."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=1, max_value=5, **kwargs)


class TextFilter(django_filters.CharFilter):
    """Text of at most ``max_length`` characters (forms.CharField refuses a NUL byte)."""

    def __init__(self, *args, max_length: int = 32, **kwargs):
        super().__init__(*args, max_length=max_length, **kwargs)


class RegistryIdFilter(TextFilter):
    """A trial by its registry ID, e.g. NCT06949137."""

    def __init__(self, field_name: str, **kwargs):
        kwargs.setdefault("help_text", "Registry ID of the trial.")
        super().__init__(field_name=field_name, **kwargs)
