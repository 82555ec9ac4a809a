"""The OpenAPI schema states the errors each operation can answer, in the one error shape, and
the limits its parameters are validated by."""

import json

import jsonschema
import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from apps.articles.autocomplete import QUERY_MAX_LENGTH
from apps.users.tests.factories import UserFactory

ERROR_REF = "#/components/schemas/Error"
AUTOCOMPLETE = "/api/v1/articles/autocomplete/"


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    """What `manage.py spectacular --validate --fail-on-warn` writes: it stops on an invalid schema."""
    path = tmp_path_factory.mktemp("schema") / "openapi.json"
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(path)
    )
    return json.loads(path.read_text())


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", path, operation


def expected_error_statuses(path: str, operation: dict) -> set[str]:
    expected = {"405", "429"}
    if "requestBody" in operation:
        expected |= {"400", "413", "415"}
    if "{" in path:
        expected.add("404")
    security = operation.get("security", [])
    if any(requirement for requirement in security):
        expected.add("401")  # a scheme it accepts, so bad credentials are refused
    if {} not in security:
        expected.add("403")  # signing in is required, so a permission applies
    return expected


def test_every_operation_lists_the_error_statuses_it_can_answer(schema):
    missing = {
        name: sorted(expected_error_statuses(path, operation) - set(operation["responses"]))
        for name, path, operation in operations(schema)
    }
    assert {name: statuses for name, statuses in missing.items() if statuses} == {}


def test_every_error_response_is_the_error_component(schema):
    for name, _, operation in operations(schema):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert response["content"]["application/json"]["schema"] == {"$ref": ERROR_REF}, (
                    name,
                    status,
                )


def test_operations_with_query_parameters_list_400(schema):
    assert "400" in schema["paths"][AUTOCOMPLETE]["get"]["responses"]
    assert "400" in schema["paths"]["/api/v1/articles/"]["get"]["responses"]


def test_the_session_login_lists_the_csrf_refusal_and_the_token_login_does_not(schema):
    assert "csrf_failed" in schema["paths"]["/api/v1/auth/login/"]["post"]["responses"]["403"]["description"]
    assert "403" not in schema["paths"]["/api/v1/auth/token/"]["post"]["responses"]


@pytest.mark.django_db
def test_real_error_bodies_match_the_error_component(schema, monkeypatch):
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "login", "1/minute")
    validator = jsonschema.Draft7Validator({**schema, "$ref": ERROR_REF})
    client, signed_in = APIClient(), APIClient()
    signed_in.force_authenticate(UserFactory())
    login, me = reverse("v1:users:login"), reverse("v1:users:me")
    bodies = {
        "invalid": client.post(login, {}, format="json"),
        "not_authenticated": client.get(me),
        "throttled": client.post(login, {}, format="json"),
        "unsupported": signed_in.patch(me, "x", content_type="text/plain"),
        "not_allowed": signed_in.delete(me),
        "csrf_failed": APIClient(enforce_csrf_checks=True).post(login, {}, format="json"),
    }
    assert {name: response.status_code for name, response in bodies.items()} == {
        "invalid": 400,
        "not_authenticated": 401,
        "throttled": 429,
        "unsupported": 415,
        "not_allowed": 405,
        "csrf_failed": 403,
    }
    for name, response in bodies.items():
        errors = [error.message for error in validator.iter_errors(response.json())]
        assert errors == [], (name, response.json())


def test_autocomplete_q_states_the_limits_the_view_applies(schema):
    (q,) = (p for p in schema["paths"][AUTOCOMPLETE]["get"]["parameters"] if p["name"] == "q")
    assert q["required"] is True
    assert q["schema"]["minLength"] == 1
    assert q["schema"]["maxLength"] == QUERY_MAX_LENGTH


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("q", "status"),
    [("", 400), ("   ", 400), ("a", 200), ("a" * QUERY_MAX_LENGTH, 200), ("a" * (QUERY_MAX_LENGTH + 1), 400)],
)
def test_autocomplete_refuses_exactly_what_the_schema_excludes(q, status):
    response = APIClient().get(reverse("v1:articles:article-autocomplete"), {"q": q})
    assert response.status_code == status, response.content
