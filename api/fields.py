"""Fields every app's API uses: ids that can never overflow, numbers passed through to the service, and
the two fields that keep staff out of what a sponsor reads (a pseudonym for a person, free text withheld)."""

from django.db.models import QuerySet
from django.utils.crypto import salted_hmac
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.permissions import is_sponsor
from core.free_text import free_text_fields, free_text_released

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
    {"type": "string", "nullable": True, "description": "Free text typed by staff. Null for sponsors (staff may "
     "have typed an identifier into it) unless a data manager released the record's text after review, and it has "
     "not changed since: POST /api/v1/free-text-reviews/."}
)  # fmt: skip
class StaffTextField(serializers.CharField):
    """Free text that staff type (a verbatim term, a reason, a description): withheld (null) from sponsors
    unless a data manager released the record's text after reviewing it and it has not changed since
    (``core.free_text``). Which records are released is asked once per model and response."""

    def __init__(self, **kwargs):
        super().__init__(read_only=True, **kwargs)

    def get_attribute(self, instance):
        value = super().get_attribute(instance)
        if value is None or not reader_is_sponsor(self):
            return value
        if self.source_attrs[-1] not in free_text_fields(type(instance)):
            return None  # not a field the record lists as its free text: never released
        return value if _released(self, instance) else None


def _released(field: serializers.Field, instance) -> bool:
    """Is ``instance``'s free text released? Asked once per model and response: the first time, for every record
    of that model in the response (the root's rows, or the rows nested under them where this field sits)."""
    known = field.context.setdefault("free_text_released", {})
    model = type(instance)._meta.concrete_model
    key = (model, instance.pk)
    if key not in known:
        batch = [row for row in _siblings(field) if isinstance(row, model) and (model, row.pk) not in known]
        if instance not in batch:
            batch.append(instance)
        released = free_text_released(batch)
        known.update({(model, row.pk): (model, row.pk) in released for row in batch})
    return known[key]


def _siblings(field: serializers.Field) -> list:
    """The objects the serializer holding ``field`` represents across the whole response: the root's rows, then
    down the sources of the nested serializers between (already fetched by the views' prefetches)."""
    path: list[str] = []
    node = field.parent
    while node is not None and node is not field.root:
        if getattr(node, "field_name", ""):  # a nested serializer bound to a field of its parent
            path = list(node.source_attrs) + path
        node = node.parent
    root = field.root.instance
    objects = list(root) if isinstance(root, list | tuple | QuerySet) else [root]
    for attr in path:
        found = []
        for obj in objects:
            value = getattr(obj, attr, None)
            if value is None:
                continue
            if hasattr(value, "all"):
                found.extend(value.all())
            elif isinstance(value, list | tuple):
                found.extend(value)
            else:
                found.append(value)
        objects = found
    return objects
