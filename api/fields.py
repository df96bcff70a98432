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


class TextField(serializers.CharField):
    """Text, and only text: a JSON number, boolean, list or object is refused (400 naming the field).

    DRF's ``CharField`` turns ``-5`` into ``"-5"`` and ``1e308`` into ``"1e+308"``: a screening number,
    a lot number, a CTCAE code or a reason sent as a number would be stored as the text of a number
    nobody typed. Every text field the API reads is a ``TextField`` (``InputModelSerializer`` maps the
    models' text columns to it), and ``tests/api/test_hostile_input.py`` sends a number to each.
    """

    default_error_messages = {"not_text": "Must be text (a JSON string), not {kind}."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_text", kind=_json_kind(data))
        return super().to_internal_value(data)


def _json_kind(value) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__
