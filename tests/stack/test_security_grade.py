"""The production stack's responses, graded by the MDN HTTP Observatory's rules: A+ (>= 100).

Each test fetches what the Observatory would (the page over HTTPS, the route from plain HTTP,
the page again with a foreign Origin) through nginx, and grades it with tests/stack/observatory.py.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from tests.stack.observatory import CORS_PROBE_ORIGIN, Response, Scan, grade, parse_set_cookie
from tests.support.http import Reply
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

PASSWORD = "a-long-passphrase"


def _response(stack: Stack, reply: Reply, path: str, *, https: bool) -> Response:
    port = stack.https_port if https else stack.http_port
    url = f"{'https' if https else 'http'}://localhost:{port}{path}"
    return Response(url, reply.status, reply.headers, reply.body)


def _http_route(stack: Stack, path: str, source: str) -> list[Response]:
    """Follow redirects from http://host/path, as the Observatory does for the site's root."""
    route = [_response(stack, stack.request("GET", path, https=False, source=source), path, https=False)]
    while route[-1].status in (301, 302, 303, 307, 308) and len(route) < 10:
        location = urlsplit(route[-1].header("Location") or "")
        https = location.scheme == "https"
        next_path = location.path + (f"?{location.query}" if location.query else "")
        reply = stack.request("GET", next_path, https=https, source=source)
        route.append(_response(stack, reply, next_path, https=https))
    return route


def observe(
    stack: Stack,
    path: str,
    *,
    source: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Scan:
    page = stack.request(method, path, body=body, headers=headers, source=source)
    assert 200 <= page.status < 300, (page.status, page.body[:500])
    cors = stack.request(
        method, path, body=body, headers={**(headers or {}), "Origin": CORS_PROBE_ORIGIN}, source=source
    )
    return Scan(
        page=_response(stack, page, path, https=True),
        http_route=_http_route(stack, path, source),
        cors=_response(stack, cors, path, https=True),
        extra_set_cookies=cors.all("Set-Cookie"),
    )


def assert_a_plus(scan: Scan) -> None:
    graded = grade(scan)
    print(f"{scan.page.url}: {graded}")  # the grade sheet, with `pytest -s`
    assert graded.score >= 100, f"{scan.page.url} graded below A+:\n{graded}"
    assert graded.grade == "A+"


def assert_host_prefixed(set_cookie: str) -> None:
    """A browser drops a __Host- cookie without Secure, with a Domain or a Path other than /."""
    attributes = {
        key.strip().lower(): value.strip()
        for key, _, value in (a.partition("=") for a in set_cookie.split(";")[1:])
    }
    assert "secure" in attributes, set_cookie
    assert "domain" not in attributes, set_cookie
    assert attributes.get("path") == "/", set_cookie


def test_the_home_page_grades_a_plus(stack: Stack):
    scan = observe(stack, "/", source="127.0.0.40")
    assert scan.page.mime == "text/html"
    assert_a_plus(scan)


def test_an_api_response_grades_a_plus(stack: Stack):
    scan = observe(stack, "/api/v1/auth/csrf/", source="127.0.0.41")
    assert scan.page.mime == "application/json"
    assert_a_plus(scan)


def test_a_static_file_grades_a_plus(stack: Stack):
    scan = observe(stack, "/static/admin/css/base.css", source="127.0.0.45")
    assert scan.page.mime == "text/css"
    assert_a_plus(scan)


def test_a_media_file_grades_a_plus(stack: Stack):
    stack.media_root.mkdir(exist_ok=True)
    (stack.media_root / "upload.txt").write_text("an uploaded file\n")

    scan = observe(stack, "/media/upload.txt", source="127.0.0.46")

    assert scan.page.body == b"an uploaded file\n"
    assert_a_plus(scan)


def test_the_login_page_sets_a_host_prefixed_csrf_cookie_and_grades_a_plus(stack: Stack):
    scan = observe(stack, "/admin/login/", source="127.0.0.42")

    cookies = scan.set_cookies()
    assert cookies
    assert {parse_set_cookie(c).name for c in cookies} == {"__Host-csrftoken"}
    for cookie in cookies:
        assert_host_prefixed(cookie)
    assert_a_plus(scan)


def test_a_session_login_sets_host_prefixed_cookies_and_grades_a_plus(stack: Stack):
    stack.create_user("grade@example.com", PASSWORD)
    credentials = json.dumps({"email": "grade@example.com", "password": PASSWORD}).encode()

    scan = observe(
        stack,
        "/api/v1/auth/login/",
        source="127.0.0.43",
        method="POST",
        body=credentials,
        headers={"Content-Type": "application/json", **stack.csrf_headers(source="127.0.0.43")},
    )

    names = {parse_set_cookie(c).name for c in scan.set_cookies()}
    assert "__Host-sessionid" in names, scan.set_cookies()
    assert not {"sessionid", "csrftoken"} & names
    for cookie in scan.set_cookies():
        assert_host_prefixed(cookie)
    assert_a_plus(scan)


def test_the_session_cookie_authenticates_the_next_request_through_nginx(stack: Stack):
    """The renamed cookie still works end to end: Django reads it back, nginx does not cache it."""
    stack.create_user("again@example.com", PASSWORD)
    credentials = json.dumps({"email": "again@example.com", "password": PASSWORD}).encode()
    login = stack.request(
        "POST",
        "/api/v1/auth/login/",
        body=credentials,
        headers={"Content-Type": "application/json", **stack.csrf_headers(source="127.0.0.44")},
        source="127.0.0.44",
    )
    assert login.status == 200, login.body
    session = next(c for c in login.all("Set-Cookie") if c.startswith("__Host-sessionid="))

    me = stack.request(
        "GET", "/api/v1/users/me/", headers={"Cookie": session.split(";")[0]}, source="127.0.0.44"
    )

    assert me.status == 200, me.body
    assert me.json()["email"] == "again@example.com"
    assert me.header("X-Cache-Status") == "BYPASS"
