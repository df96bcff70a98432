"""The error-code registry (core/error_codes.py) is complete, documented in docs/api.md and in the OpenAPI schema."""

import ast
import re
from pathlib import Path

import pytest
from django.conf import settings
from drf_spectacular.generators import SchemaGenerator
from rest_framework import exceptions

from core.errors import ErrorCode

ROOT = Path(settings.BASE_DIR)
PRODUCTION = ("api", "cohorts", "config", "core", "reminders", "safety", "trial")
# Calls whose first argument, or ``code=`` keyword, is an error code.
RAISERS = {
    "DomainError",
    "RuleViolation",
    "InvalidInput",
    "PermissionDenied",
    "InfusionHold",
    "error_body",
    "json_error",
}


def _production_modules():
    for package in PRODUCTION:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _code_arguments(tree):
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name in RAISERS and node.args:
            yield node.args[0]
        yield from (kw.value for kw in node.keywords if kw.arg == "code")


def test_every_code_raised_in_the_code_base_is_a_member_of_the_registry():
    literal, unknown, used = [], [], set()
    for path, tree in _production_modules():
        where = path.relative_to(ROOT)
        for argument in _code_arguments(tree):
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                literal.append(f"{where}:{argument.lineno}: {argument.value!r}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ErrorCode":
                if node.attr in ErrorCode.__members__:
                    used.add(ErrorCode[node.attr])
                elif not node.attr.startswith("_") and node.attr != "for_status":
                    unknown.append(f"{where}:{node.lineno}: ErrorCode.{node.attr}")
    assert literal == [], "raise with ErrorCode.<NAME>, not a string"
    assert unknown == []
    assert used, "the scan found no ErrorCode use: it is broken"


@pytest.mark.parametrize(
    "exception",
    [
        exceptions.ParseError,
        exceptions.AuthenticationFailed,
        exceptions.NotAuthenticated,
        exceptions.PermissionDenied,
        exceptions.NotFound,
        exceptions.MethodNotAllowed,
        exceptions.NotAcceptable,
        exceptions.UnsupportedMediaType,
    ],
)
def test_the_codes_the_framework_answers_with_are_in_the_registry(exception):
    code = exception.default_code
    assert code in ErrorCode.__members__.values()
    assert exception.status_code in ErrorCode(code).statuses


def test_every_code_has_a_status_and_a_meaning():
    for code in ErrorCode:
        assert code.statuses and all(400 <= status < 500 or code == ErrorCode.SERVER_ERROR for status in code.statuses)
        assert code.meaning.strip(), code
        assert re.fullmatch(r"[a-z][a-z0-9_]*", code.value), code


def test_docs_api_md_lists_every_code():
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    missing = [code.value for code in ErrorCode if f"`{code.value}`" not in text]
    assert missing == []


@pytest.mark.django_db
def test_the_openapi_schema_documents_every_code_on_the_error_response():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    description = schema["components"]["schemas"]["Error"]["properties"]["code"]["description"]
    missing = [code.value for code in ErrorCode if f"`{code.value}`" not in description]
    assert missing == []
    for status in (400, 401, 403, 404, 409):
        assert f"{status}: " in description
