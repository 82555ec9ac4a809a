"""Brute-force protection: django-axes on the API and admin logins, per username and client address."""

import time
from datetime import timedelta

import pytest
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from apps.users.tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "v1:users:login"


@pytest.fixture(autouse=True)
def _small_limits(settings, monkeypatch):
    settings.AXES_FAILURE_LIMIT = 3
    # The login throttle would answer 429 first; these tests are about the lockout.
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "login", "1000/minute")


def login(client: APIClient, email: str, password: str, **extra):
    return client.post(reverse(LOGIN), {"email": email, "password": password}, format="json", **extra)


def fail_until_locked(client: APIClient, email: str, limit: int = 3, **extra) -> None:
    """The limit-th failure is the one that locks, and is answered 429 already."""
    for _ in range(limit - 1):
        assert login(client, email, "wrong", **extra).status_code == 401
    assert login(client, email, "wrong", **extra).status_code == 429


def test_failed_logins_lock_the_account_for_that_address_even_with_the_right_password():
    user = UserFactory()
    client = APIClient()
    fail_until_locked(client, user.email)
    response = login(client, user.email, DEFAULT_PASSWORD)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "locked_out"


def test_the_cool_off_unlocks(settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    user = UserFactory()
    client = APIClient()
    fail_until_locked(client, user.email)
    assert login(client, user.email, DEFAULT_PASSWORD).status_code == 429
    time.sleep(1.5)
    assert login(client, user.email, DEFAULT_PASSWORD).status_code == 200


def test_another_user_from_the_same_address_is_not_locked_out():
    victim, other = UserFactory(), UserFactory()
    client = APIClient()
    fail_until_locked(client, victim.email)
    assert login(client, other.email, DEFAULT_PASSWORD).status_code == 200


def test_the_same_user_from_another_address_is_not_locked_out():
    user = UserFactory()
    fail_until_locked(APIClient(), user.email, REMOTE_ADDR="203.0.113.7")
    assert login(APIClient(), user.email, DEFAULT_PASSWORD, REMOTE_ADDR="203.0.113.8").status_code == 200


def test_a_forged_x_forwarded_for_does_not_escape_the_lockout(settings):
    settings.NUM_PROXIES = 1  # behind nginx, which appends the address it saw
    user = UserFactory()
    client = APIClient()
    for forged in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
        login(client, user.email, "wrong", HTTP_X_FORWARDED_FOR=f"{forged}, 203.0.113.9")
    response = login(client, user.email, DEFAULT_PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.4, 203.0.113.9")
    assert response.status_code == 429


def test_changing_the_case_of_the_address_does_not_escape_the_lockout():
    user = UserFactory(email="ada@example.com")
    client = APIClient()
    assert login(client, "ADA@example.com", "wrong").status_code == 401
    assert login(client, "Ada@Example.com", "wrong").status_code == 401
    assert login(client, "ada@EXAMPLE.COM", "wrong").status_code == 429
    assert login(client, user.email, DEFAULT_PASSWORD).status_code == 429


def test_the_admin_login_is_locked_too(client):
    user = UserFactory(is_staff=True)
    url = reverse("admin:login")
    for _ in range(2):
        assert client.post(url, {"username": user.email, "password": "wrong"}).status_code == 200
    assert client.post(url, {"username": user.email, "password": "wrong"}).status_code == 429
    response = client.post(url, {"username": user.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 429


def test_failed_logins_are_counted_and_locked_out_while_the_cache_redis_is_down(settings, monkeypatch):
    """The lockout counts live in the database: a Redis outage neither fails a login attempt with
    a 500 nor resets an attacker's count."""
    from axes.handlers.proxy import AxesProxyHandler
    from django.core.cache import cache

    from tests.support.net import closed_port

    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{closed_port()}/0"},
    }
    # django-axes keeps its handler, and the handler its cache, from the first login of the run.
    monkeypatch.setattr(AxesProxyHandler, "implementation", None)
    cache.set("probe", 1)
    assert cache.get("probe") is None, "the cache should be unreachable"
    user = UserFactory()
    fail_until_locked(APIClient(), user.email)
