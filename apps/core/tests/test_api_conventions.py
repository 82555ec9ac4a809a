"""Every API input error is a 4xx with the one JSON error shape; never a 5xx."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from apps.users.tests.factories import UserFactory
from tests.support.http import api_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_logged_in() -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory())
    return client


def test_malformed_json_is_400_with_the_error_shape():
    response = APIClient().post(reverse("v1:users:login"), data='{"email": ', content_type="application/json")
    error = api_error(response, 400)
    assert error["code"] == "parse_error"
    assert "JSON parse error" in error["message"]


def test_wrong_types_are_400_naming_the_field(client_logged_in):
    response = client_logged_in.patch(reverse("v1:users:me"), {"first_name": ["a", "list"]}, format="json")
    error = api_error(response, 400)
    assert "first_name" in error["fields"]


def test_a_json_array_instead_of_an_object_is_400():
    response = APIClient().post(reverse("v1:users:login"), data="[1, 2]", content_type="application/json")
    error = api_error(response, 400)
    assert "non_field_errors" in error["fields"]


def test_unsupported_media_type_is_415():
    response = APIClient().post(reverse("v1:users:login"), data="email=x", content_type="text/plain")
    api_error(response, 415)


def test_an_oversize_body_is_413_before_any_parsing(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = '{"email": "' + "a" * 2048 + '"}'
    response = APIClient().post(reverse("v1:users:login"), data=body, content_type="application/json")
    error = api_error(response, 413)
    assert "1024 bytes" in error["message"]


def test_an_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/v1/no-such-thing/")
    error = api_error(response, 404)
    assert error["code"] == "not_found"


def test_an_unknown_host_is_400(client):
    response = client.get(reverse("v1:users:me"), HTTP_HOST="evil.example.com")
    error = api_error(response, 400)
    assert error["code"] == "bad_request"


def test_method_not_allowed_is_405(client_logged_in):
    response = client_logged_in.delete(reverse("v1:users:me"))
    api_error(response, 405)


def test_login_is_throttled_with_429(monkeypatch):
    # DRF reads the rates once, at import; patch the class the way the setting would set it.
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "login", "3/minute")
    client = APIClient()
    statuses = [
        client.post(reverse("v1:users:login"), {"email": "a@example.com", "password": "x"}, format="json")
        for _ in range(4)
    ]
    assert [response.status_code for response in statuses[:3]] == [401, 401, 401]
    error = api_error(statuses[3], 429)
    assert error["code"] == "throttled"


def test_the_openapi_schema_and_docs_are_served(client):
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/v1/users/me/" in schema.json()["paths"]
    docs = client.get(reverse("api-docs"))
    assert docs.status_code == 200
    assert "script-src 'self'" in docs["Content-Security-Policy"]
    script = client.get(reverse("api-docs") + "?script=")
    assert script.status_code == 200
