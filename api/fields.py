"""Fields every app's API uses: ids that can never overflow, numbers passed through to the service."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

# Ids are 64-bit integers: anything larger is a 400 from the serializer, never an overflow in the database.
MAX_ID = 2**63 - 1


def id_field(queryset: QuerySet, **kwargs) -> serializers.PrimaryKeyRelatedField:
    """A related object's id. ``"abc"``, ``1.5``, ``true`` or ``10**30`` answer 400, not a lookup."""
    return serializers.PrimaryKeyRelatedField(
        queryset=queryset, pk_field=serializers.IntegerField(min_value=1, max_value=MAX_ID), **kwargs
    )


def optional_boolean(help_text: str) -> serializers.BooleanField:
    """A yes/no query filter. ``default=None``: an absent query parameter means "no filter", not False."""
    return serializers.BooleanField(required=False, allow_null=True, default=None, help_text=help_text)


@extend_schema_field({"oneOf": [{"type": "number"}, {"type": "string", "format": "decimal"}]})
class PassThroughNumberField(serializers.Field):
    """A number as sent (JSON number or decimal string): the service parses it and names what is wrong."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return str(value)


@extend_schema_field({"type": "integer", "format": "int64", "minimum": 0})
class PassThroughCountField(serializers.Field):
    """An exact count (e.g. cells) as sent; the service refuses anything that is not a whole number."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value
