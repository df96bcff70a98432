"""Fields every app's API uses: ids that can never overflow, numbers passed through to the service, and
the two fields that keep staff out of what a sponsor reads (a pseudonym for a person, free text withheld)."""

from django.db.models import QuerySet
from django.utils.crypto import salted_hmac
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.permissions import is_sponsor

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


def reader_is_sponsor(field: serializers.Field) -> bool:
    """Is the response for a sponsor? Asked once per response (cached in the root serializer's context).

    Without a request in the context the answer is yes: a serializer built without one shows no more than
    a sponsor may see.
    """
    context = field.context
    if "reader_is_sponsor" not in context:
        request = context.get("request")
        context["reader_is_sponsor"] = request is None or is_sponsor(request.user)
    return context["reader_is_sponsor"]


def staff_pseudonym(user_id: int) -> str:
    """``staff-`` and 8 hex digits: the same for the same person in every response, and not reversible to
    a username without the server's secret key (a keyed HMAC of the user's id)."""
    return "staff-" + salted_hmac("api.fields.staff_pseudonym", str(user_id)).hexdigest()[:8]


@extend_schema_field(
    {"type": "string", "nullable": True, "description": "Staff: the username. Sponsors: a stable pseudonym "
     "(`staff-` and 8 hex digits), the same person always the same."}
)  # fmt: skip
class StaffMemberField(serializers.Field):
    """A member of staff (a user foreign key as ``source``): the username, or for sponsors a pseudonym."""

    def __init__(self, **kwargs):
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, user):
        return staff_pseudonym(user.pk) if reader_is_sponsor(self) else user.username


@extend_schema_field(
    {"type": "string", "nullable": True, "description": "Free text typed by staff. Null for sponsors: staff may "
     "have typed an identifier into it."}
)  # fmt: skip
class StaffTextField(serializers.CharField):
    """Free text that staff type (a verbatim term, a reason, a description): withheld (null) from sponsors."""

    def __init__(self, **kwargs):
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value):
        return None if reader_is_sponsor(self) else super().to_representation(value)
