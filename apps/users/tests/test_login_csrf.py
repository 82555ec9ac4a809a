"""Login CSRF, under gunicorn with the production settings, HTTPS as nginx reports it.

A form on another site that posts valid credentials to the session login must not sign the
visitor in (as the attacker): Django's CSRF check refuses it before the credentials are read.
"""

import http.client
import json
import secrets
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest
from django.conf import settings

from apps.users.models import User
from apps.users.tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.support.http import Reply
from tests.support.processes import database_url
from tests.support.redis_servers import redis_server
from tests.support.web import Web, running_web

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LOGIN = "/api/v1/auth/login/"
SESSION_COOKIE = "__Host-sessionid"
CSRF_COOKIE = "__Host-csrftoken"
# Failed logins that lock an address out here; the cross-site posts below send more than that.
FAILURE_LIMIT = 2


@pytest.fixture(scope="module")
def web(tmp_path_factory, django_db_setup, django_db_blocker):
    # After django_db_setup: the server must get the test database's name, not the configured one.
    with (
        redis_server() as redis_port_server,
        running_web(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings.production",
                "SECRET_KEY": secrets.token_urlsafe(64),
                "ALLOWED_HOSTS": "127.0.0.1",
                "DATABASE_URL": database_url(settings.DATABASES["default"]),
                "REDIS_URL": f"redis://127.0.0.1:{redis_port_server.port}",
                "AXES_FAILURE_LIMIT": str(FAILURE_LIMIT),
                "API_THROTTLE_LOGIN": "off",
            },
            tmp_path_factory.mktemp("login-csrf-logs"),
            workers=1,
        ) as web,
    ):
        yield web


@pytest.fixture(autouse=True)
def _passwords_production_can_check(settings):
    """The test profile hashes with MD5 for speed; the server, on production settings, knows only
    production's hashers."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]


def send(web: Web, method: str, path: str, *, body: bytes = b"", headers: dict[str, str]) -> Reply:
    """One request as nginx passes it on: TLS ended there, and said so in X-Forwarded-Proto."""
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=20)
    all_headers = {"Host": f"127.0.0.1:{web.port}", "X-Forwarded-Proto": "https", **headers}
    try:
        connection.request(method, path, body=body or None, headers=all_headers)
        response = connection.getresponse()
        return Reply(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


def cookies_set(reply: Reply) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for line in reply.all("set-cookie"):
        jar.load(line)
    return jar


def cross_site_form_post(web: Web, email: str, password: str) -> Reply:
    """What a hidden form on https://evil.example submits: form-encoded, no token, its Origin."""
    return send(
        web,
        "POST",
        LOGIN,
        body=urlencode({"email": email, "password": password}).encode(),
        headers={
            "Origin": "https://evil.example",
            "Referer": "https://evil.example/win-a-prize",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )


def same_origin_login(web: Web, email: str, password: str) -> tuple[Reply, SimpleCookie]:
    """What this site's own page does: fetch the token, then post JSON with it from its Origin."""
    csrf = send(web, "GET", "/api/v1/auth/csrf/", headers={"Accept": "application/json"})
    assert csrf.status == 200, csrf.body
    jar = cookies_set(csrf)
    assert CSRF_COOKIE in jar
    login = send(
        web,
        "POST",
        LOGIN,
        body=json.dumps({"email": email, "password": password}).encode(),
        headers={
            "Origin": f"https://127.0.0.1:{web.port}",
            "Content-Type": "application/json",
            "Cookie": f"{CSRF_COOKIE}={jar[CSRF_COOKIE].value}",
            "X-CSRFToken": csrf.json()["csrf_token"],
        },
    )
    return login, cookies_set(login)


def test_a_cross_site_form_post_with_valid_credentials_is_refused_and_signs_nobody_in(web):
    user = UserFactory()

    reply = cross_site_form_post(web, user.email, DEFAULT_PASSWORD)

    assert reply.status == 403, reply.body
    body = reply.json()
    assert body["error"]["code"] == "csrf_failed"
    assert "evil.example" in body["error"]["message"]
    assert body["request_id"] == reply.header("x-request-id")
    assert SESSION_COOKIE not in cookies_set(reply)
    assert User.objects.get(pk=user.pk).last_login is None


def test_cross_site_posts_never_reach_the_password_check(web):
    """More wrong passwords than the lockout allows, all refused by the CSRF check: had one been
    checked, django-axes would have counted it, and the right password would now get 429."""
    user = UserFactory()

    statuses = [cross_site_form_post(web, user.email, "wrong").status for _ in range(FAILURE_LIMIT + 1)]
    login, _ = same_origin_login(web, user.email, DEFAULT_PASSWORD)

    assert statuses == [403] * (FAILURE_LIMIT + 1)
    assert login.status == 200, login.body


def test_the_sites_own_page_signs_in_with_the_csrf_token(web):
    user = UserFactory()

    login, jar = same_origin_login(web, user.email.upper(), DEFAULT_PASSWORD)

    assert login.status == 200, login.body
    assert login.json()["email"] == user.email
    assert SESSION_COOKIE in jar
    me = send(
        web, "GET", "/api/v1/users/me/", headers={"Cookie": f"{SESSION_COOKIE}={jar[SESSION_COOKIE].value}"}
    )
    assert me.status == 200, me.body
    assert me.json()["id"] == user.pk


def test_a_wrong_password_from_the_sites_own_page_is_401_with_a_challenge(web):
    user = UserFactory()

    login, jar = same_origin_login(web, user.email, "wrong")

    assert login.status == 401, login.body
    assert login.header("www-authenticate") == "Token"
    assert login.json()["error"]["code"] == "authentication_failed"
    assert SESSION_COOKIE not in jar
