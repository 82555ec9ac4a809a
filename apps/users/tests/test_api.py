import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.users.tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api_client() -> APIClient:
    return APIClient(enforce_csrf_checks=True)


def test_session_login_then_me_returns_the_user(api_client):
    user = UserFactory()
    response = api_client.post(
        reverse("v1:users:login"), {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["email"] == user.email

    me = api_client.get(reverse("v1:users:me"))
    assert me.status_code == 200
    assert me.json()["id"] == user.id


def test_login_with_a_wrong_password_is_401_with_the_error_shape(api_client):
    user = UserFactory()
    response = api_client.post(
        reverse("v1:users:login"), {"email": user.email, "password": "wrong"}, format="json"
    )
    assert response.status_code in (401, 403)
    assert response.json()["error"]["message"] == "Email or password is incorrect."


def test_login_with_missing_fields_names_them(api_client):
    response = api_client.post(reverse("v1:users:login"), {}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"email", "password"}


def test_me_requires_authentication(api_client):
    response = api_client.get(reverse("v1:users:me"))
    assert response.status_code in (401, 403)
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
    assert api_client.get(reverse("v1:users:me")).status_code in (401, 403)


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
    api_client.post(
        reverse("v1:users:login"), {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"
    )
    cache.delete_pattern("*")
    assert api_client.get(reverse("v1:users:me")).status_code == 200
