"""The one exception handler: every error is {"code", "message", "fields"} with the right status."""

import pytest
from django.db import IntegrityError
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from api.exceptions import exception_handler
from core.errors import InvalidInput, RuleViolation


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (RuleViolation("cohort_full", "Cohort 1 is full (3 of 3)."), 409, "cohort_full"),
        (InvalidInput("bad_rate", "The rate must be a positive number.", {"rate": ["Not positive."]}), 400, "bad_rate"),
        (ValidationError({"rate": ["A valid number is required."]}), 400, "invalid"),
        (IntegrityError("duplicate key"), 409, "conflict"),
    ],
)
def test_errors_become_json_with_a_stable_code_and_status(error, status, code):
    response = exception_handler(error, {})
    assert response.status_code == status
    assert response.data["code"] == code
    assert set(response.data) == {"code", "message", "fields"}
    assert response.data["message"]


def test_a_serializer_error_keeps_its_field_messages():
    class Form(serializers.Serializer):
        rate = serializers.DecimalField(max_digits=5, decimal_places=2)

    form = Form(data={"rate": "fast"})
    assert not form.is_valid()
    response = exception_handler(ValidationError(form.errors), {})
    assert response.data["fields"] == {"rate": ["A valid number is required."]}
    assert "rate: A valid number is required." in response.data["message"]
