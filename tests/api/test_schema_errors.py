"""Every operation documents the error responses it can answer, each as the one error body (issue 13, item 3).

``api.schema.document_error_responses`` adds them by what the operation has: every route 401/403/429, a path
parameter 404, a body or a filter 400, a write 409/413, a body 415. The answers themselves are tested where
they are made (tests/api/test_hostile_input.py: 400/404/413/415; test_tokens.py: 401/429;
tests/api/test_filters.py: a bad filter is 400).
"""

import pytest
from drf_spectacular.generators import SchemaGenerator

from api.schema import document_error_responses

ERROR = {"$ref": "#/components/schemas/Error"}


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema):
    return [(path, method, op) for path, ops in schema["paths"].items() for method, op in ops.items()]


def test_the_error_body_is_a_component_with_code_message_and_fields(schema):
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"code", "message", "fields"}
    assert "`cohort_full`" in error["properties"]["code"]["description"]  # the registry, by status


def test_every_api_operation_documents_401_403_and_429_as_the_error_body(schema):
    operations = _operations(schema)
    assert len(operations) > 50
    for path, method, op in operations:
        for status in ("401", "403", "429"):
            assert op["responses"][status]["content"]["application/json"]["schema"] == ERROR, (path, method, status)


@pytest.mark.parametrize(
    ("has", "statuses"),
    [
        (lambda path, method, op: "{" in path, {"404"}),
        (lambda path, method, op: "requestBody" in op, {"400", "413", "415", "409"}),
        (lambda path, method, op: method in {"post", "put", "patch", "delete"}, {"409", "413"}),
        (lambda path, method, op: any(p["name"] in {"trial", "cohort", "status"} for p in op.get("parameters", [])),
         {"400"}),
    ],
    ids=["a path parameter: 404", "a body: 400 413 415 409", "a write: 409 413", "a filter: 400"],
)  # fmt: skip
def test_each_operation_documents_the_errors_its_shape_can_answer(schema, has, statuses):
    concerned = [(path, method, op) for path, method, op in _operations(schema) if has(path, method, op)]
    assert concerned
    missing = [(path, method, statuses - set(op["responses"])) for path, method, op in concerned]
    assert [m for m in missing if m[2]] == []


def test_a_read_without_a_body_or_filter_documents_no_400_409_413_or_415(schema):
    def filters(op):
        return [p for p in op.get("parameters", []) if p["name"] not in {"limit", "offset"}]

    reads = [op for path, ops in schema["paths"].items() if "{" not in path
             for method, op in ops.items() if method == "get" and not filters(op)]  # fmt: skip
    assert reads
    for op in reads:
        assert not {"400", "409", "413", "415"} & set(op["responses"])


def test_a_view_s_own_description_of_an_error_is_kept():
    declared = {"description": "Own words", "content": {}}
    result = {"paths": {"/api/v1/x/{id}/": {"post": {"responses": {"409": declared}}}}}
    document_error_responses(result, None, None, True)
    responses = result["paths"]["/api/v1/x/{id}/"]["post"]["responses"]
    assert responses["409"] is declared
    assert {"401", "403", "404", "409", "413", "429"} == set(responses)
