"""Every field that can be null is ``nullable`` in the schema (issue 13, item 3).

Walked over every serializer of the API whose component is in the schema: a field whose source crosses a
model field that allows NULL (``resulting_cohort``, a participant's ``study_id`` before enrollment, a CTCAE
term given as free text…), a field declared ``allow_null``, and a method field whose return annotation admits
``None`` must all be ``nullable: true``. (tests/api/test_schema_responses.py checks the same on real bodies.)
"""

import importlib
import pkgutil
import typing

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.plumbing import get_override
from rest_framework import serializers

API_PACKAGES = ("api", "cohorts.api", "safety.api", "reminders.api", "exports.api")


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def _serializer_classes() -> set[type]:
    for name in API_PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.iter_modules(getattr(package, "__path__", [])):  # a module or a package
            importlib.import_module(f"{name}.{module.name}")
    found, todo = set(), [serializers.Serializer]
    while todo:
        for cls in todo.pop().__subclasses__():
            todo.append(cls)
            if cls.__module__.startswith(API_PACKAGES):
                found.add(cls)
    return found


def _can_be_null(cls: type, name: str, field: serializers.Field) -> str | None:
    """Why ``field`` may come back null, or None if it cannot."""
    if getattr(field, "allow_null", False):
        return "allow_null"
    if isinstance(field, serializers.SerializerMethodField):
        method = getattr(cls, field.method_name or f"get_{name}")
        returns = typing.get_type_hints(method).get("return")
        return "its method may return None" if type(None) in typing.get_args(returns) else None
    model = getattr(getattr(cls, "Meta", None), "model", None)
    if model is None or field.source == "*" or isinstance(field, serializers.ListSerializer):
        return None
    for part in field.source.split("."):
        model_field = next((f for f in model._meta.get_fields() if f.name == part), None)
        if model_field is None or model_field.one_to_many or model_field.many_to_many:
            return None
        if getattr(model_field, "null", False) or (model_field.one_to_one and model_field.auto_created):
            return f"{model.__name__}.{part} is NULL-able"
        model = model_field.related_model
        if model is None:
            return None
    return None


def test_every_field_that_can_be_null_is_nullable_in_its_component(schema):
    components = schema["components"]["schemas"]
    missing, checked = [], 0
    for cls in _serializer_classes():
        try:
            instance = cls()
        except TypeError:
            continue
        component = components.get(get_override(cls, "component_name") or cls.__name__.removesuffix("Serializer"))
        if component is None:
            continue
        for name, field in instance.fields.items():
            declared = component.get("properties", {}).get(name)
            if field.write_only or declared is None:
                continue
            checked += 1
            why = _can_be_null(cls, name, field)
            if why and not declared.get("nullable"):
                missing.append(f"{cls.__name__}.{name}: {why}")
    assert checked > 200
    assert sorted(missing) == []
