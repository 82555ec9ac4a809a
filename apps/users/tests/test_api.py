import pytest
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.urls import reverse
from rest_framework.test import APIClient

from apps.users.tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api_client() -> APIClient:
    """A browser's client: Django's CSRF check applies to it."""
    return APIClient(enforce_csrf_checks=True)


def csrf_token(client: APIClient) -> str:
    response = client.get(reverse("v1:users:csrf"))
    assert response.status_code == 200
    return response.json()["csrf_token"]


def session_login(client: APIClient, email: str, password: str = DEFAULT_PASSWORD):
    return client.post(
        reverse("v1:users:login"),
        {"email": email, "password": password},
        format="json",
        HTTP_X_CSRFTOKEN=csrf_token(client),
    )


@pytest.fixture
def login_signals():
    """Every login Django saw succeed or fail, as (signal, email)."""
    seen: list[tuple[str, str]] = []

    def failed(sender, credentials, **kwargs):
        seen.append(("failed", credentials.get("username")))

    def logged_in(sender, user, **kwargs):
        seen.append(("logged_in", user.email))

    user_login_failed.connect(failed, dispatch_uid="test-failed")
    user_logged_in.connect(logged_in, dispatch_uid="test-logged-in")
    yield seen
    user_login_failed.disconnect(dispatch_uid="test-failed")
    user_logged_in.disconnect(dispatch_uid="test-logged-in")


def test_session_login_then_me_returns_the_user(api_client):
    user = UserFactory()
    response = session_login(api_client, user.email)
    assert response.status_code == 200
    assert response.json()["email"] == user.email

    me = api_client.get(reverse("v1:users:me"))
    assert me.status_code == 200
    assert me.json()["id"] == user.id


def test_the_csrf_endpoint_sets_the_cookie_and_is_never_cached(api_client):
    response = api_client.get(reverse("v1:users:csrf"))
    assert response.status_code == 200
    assert response.json()["csrf_token"]
    assert settings.CSRF_COOKIE_NAME in response.cookies
    assert "no-store" in response["Cache-Control"]


def test_a_session_login_without_a_csrf_token_is_refused_before_the_password_is_looked_at(
    api_client, login_signals
):
    user = UserFactory()
    response = api_client.post(
        reverse("v1:users:login"), {"email": user.email, "password": DEFAULT_PASSWORD}, format="multipart"
    )
    assert response.status_code == 403
    body = response.json()
    assert body["error"]["code"] == "csrf_failed"
    assert body["request_id"] == response["X-Request-ID"]
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    assert login_signals == []
    user.refresh_from_db()
    assert user.last_login is None


def test_a_session_login_from_another_origin_is_refused_even_with_the_token(api_client, login_signals):
    user = UserFactory()
    token = csrf_token(api_client)
    response = api_client.post(
        reverse("v1:users:login"),
        {"email": user.email, "password": DEFAULT_PASSWORD},
        format="json",
        HTTP_X_CSRFTOKEN=token,
        HTTP_ORIGIN="https://evil.example",
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"
    assert "evil.example" in response.json()["error"]["message"]
    assert login_signals == []


def test_login_rotates_the_csrf_token_and_the_new_one_allows_writes(api_client):
    user = UserFactory()
    before = csrf_token(api_client)
    assert session_login(api_client, user.email).status_code == 200
    stale = api_client.post(reverse("v1:users:logout"), HTTP_X_CSRFTOKEN=before)
    assert stale.status_code == 403
    fresh = api_client.post(reverse("v1:users:logout"), HTTP_X_CSRFTOKEN=csrf_token(api_client))
    assert fresh.status_code == 204


def test_the_token_endpoint_needs_no_csrf_token_and_sets_no_cookie(api_client):
    user = UserFactory()
    response = api_client.post(
        reverse("v1:users:token"), {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["token"]
    assert not response.cookies


@pytest.mark.parametrize("route", ["v1:users:login", "v1:users:token"])
def test_a_wrong_password_is_401_with_a_www_authenticate_challenge(api_client, route):
    user = UserFactory()
    response = api_client.post(
        reverse(route),
        {"email": user.email, "password": "wrong"},
        format="json",
        HTTP_X_CSRFTOKEN=csrf_token(api_client),
    )
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["error"] == {
        "code": "authentication_failed",
        "message": "Email or password is incorrect.",
    }


@pytest.mark.parametrize("route", ["v1:users:login", "v1:users:token"])
def test_login_ignores_the_case_of_the_address(api_client, route):
    user = UserFactory(email="ada.lovelace@example.com")
    response = api_client.post(
        reverse(route),
        {"email": "Ada.Lovelace@EXAMPLE.com", "password": DEFAULT_PASSWORD},
        format="json",
        HTTP_X_CSRFTOKEN=csrf_token(api_client),
    )
    assert response.status_code == 200, response.content
    if route == "v1:users:login":
        assert response.json()["id"] == user.id


def test_login_with_missing_fields_names_them(api_client):
    response = api_client.post(
        reverse("v1:users:login"), {}, format="json", HTTP_X_CSRFTOKEN=csrf_token(api_client)
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"email", "password"}


def test_me_requires_authentication(api_client):
    response = api_client.get(reverse("v1:users:me"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_token_login_authenticates_a_non_browser_client(api_client):
    user = UserFactory()
    token = api_client.post(
        reverse("v1:users:token"), {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"
    ).json()["token"]

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get(reverse("v1:users:me")).json()["email"] == user.email

    assert client.post(reverse("v1:users:token-revoke")).status_code == 204
    assert client.get(reverse("v1:users:me")).status_code == 401


def test_logout_ends_the_session(api_client):
    user = UserFactory()
    api_client.force_login(user)
    api_client.handler.enforce_csrf_checks = False
    assert api_client.post(reverse("v1:users:logout")).status_code == 204
    assert api_client.get(reverse("v1:users:me")).status_code == 401


def test_me_updates_the_name_but_not_the_email(api_client):
    user = UserFactory(first_name="Ada")
    client = APIClient()
    client.force_authenticate(user)
    response = client.patch(
        reverse("v1:users:me"), {"first_name": "Grace", "email": "other@example.com"}, format="json"
    )
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.first_name == "Grace"
    assert user.email != "other@example.com"


def test_session_survives_in_the_database_when_the_cache_is_emptied(api_client):
    from django.core.cache import cache

    user = UserFactory()
    assert session_login(api_client, user.email).status_code == 200
    cache.delete_pattern("*")
    assert api_client.get(reverse("v1:users:me")).status_code == 200
