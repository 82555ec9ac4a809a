"""The production stack, running: nginx, gunicorn, the Celery worker and beat under supervisord.

The tests run in the order written: the restarts and the reload come late, and the last test
stops the stack the way an operator does (Ctrl-C) and checks that nothing is left running.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from celery import Celery

from apps.core.data.db_router import RECENT_WRITE_COOKIE
from tests.processes import wait_until
from tests.stack.conftest import Stack, alive, descendants

pytestmark = pytest.mark.integration

RESTART_DEADLINE = 15


def test_health_check_answers_200_through_nginx(stack: Stack):
    reply = stack.request("GET", "/healthz")
    assert reply.status == 200
    assert reply.json() == {"status": "ok"}
    assert reply.header("Server") == "nginx"


def _api_token(stack: Stack, email: str, source: str) -> str:
    """Create a user with the Django shell and log in through nginx for an API token."""
    stack.create_user(email, "a-long-passphrase")
    credentials = json.dumps({"email": email, "password": "a-long-passphrase"}).encode()
    token = stack.request(
        "POST",
        "/api/v1/auth/token/",
        body=credentials,
        headers={"Content-Type": "application/json"},
        source=source,
    )
    assert token.status == 200, token.body
    return str(token.json()["token"])


def test_an_authenticated_api_call_answers_200_through_nginx(stack: Stack):
    token = _api_token(stack, "ada@example.com", source="127.0.0.10")

    me = stack.request("GET", "/api/v1/users/me/", headers={"Authorization": f"Token {token}"})

    assert me.status == 200
    assert me.json()["email"] == "ada@example.com"


def test_a_repeated_anonymous_api_get_is_answered_from_the_nginx_micro_cache(stack: Stack):
    first = stack.request("GET", "/api/v1/articles/?ordering=title")
    second = stack.request("GET", "/api/v1/articles/?ordering=title")

    assert (first.status, second.status) == (200, 200)
    assert first.header("X-Cache-Status") == "MISS"
    assert second.header("X-Cache-Status") == "HIT"
    assert second.body == first.body


ANALYTICS_COOKIES = ["_ga=GA1.1.1234567890.1700000000; _gid=GA1.1.987654321.1700000000", "_pk_id.1.1fff=abc"]


def test_anonymous_clients_with_analytics_cookies_share_the_nginx_micro_cache_entry(stack: Stack):
    path = "/api/v1/articles/?ordering=published_at"
    first = stack.request("GET", path)
    with_cookies = [stack.request("GET", path, headers={"Cookie": cookie}) for cookie in ANALYTICS_COOKIES]

    assert first.header("X-Cache-Status") == "MISS"
    for reply in with_cookies:
        assert (reply.status, reply.header("X-Cache-Status")) == (200, "HIT")
        assert reply.body == first.body


BYPASSING = {
    "token": {"Authorization": "Token not-a-real-one"},
    "session": {"Cookie": "__Host-sessionid=not-a-real-one"},
    "csrf-token": {"Cookie": f"{ANALYTICS_COOKIES[0]}; __Host-csrftoken=not-a-real-one"},
    "development-session": {"Cookie": "sessionid=not-a-real-one; _ga=GA1.1.1.1"},
    "development-csrf-token": {"Cookie": "csrftoken=not-a-real-one"},
    "recent-write": {"Cookie": f"{RECENT_WRITE_COOKIE}=1"},
}


@pytest.mark.parametrize("client", BYPASSING, ids=list(BYPASSING))
def test_an_api_get_with_a_session_csrf_or_write_cookie_or_credentials_bypasses_the_micro_cache(
    stack: Stack, client: str
):
    """Neither answered from the micro-cache nor stored in it: the next anonymous client misses."""
    path = f"/api/v1/articles/?ordering=-title&probe={client}"
    stack.request("GET", path)  # an entry this client must not be answered from

    reply = stack.request("GET", path, headers=BYPASSING[client])
    cold = path + "&cold=1"
    stored = stack.request("GET", cold, headers=BYPASSING[client])
    anonymous = stack.request("GET", cold)

    assert reply.header("X-Cache-Status") == "BYPASS"
    assert stored.header("X-Cache-Status") == "BYPASS"
    assert anonymous.header("X-Cache-Status") == "MISS"


def test_the_browsable_api_and_json_are_cached_apart(stack: Stack):
    path = "/api/v1/articles/?ordering=title&page_size=3"
    as_json = stack.request("GET", path, headers={"Accept": "application/json"})
    as_html = stack.request("GET", path, headers={"Accept": "text/html"})

    assert (as_json.header("X-Cache-Status"), as_html.header("X-Cache-Status")) == ("MISS", "MISS")
    assert as_json.header("Content-Type") == "application/json"
    assert (as_html.header("Content-Type") or "").startswith("text/html")


def test_the_csrf_cookie_is_never_served_from_a_cache_to_another_client(stack: Stack):
    """GET /api/v1/auth/csrf/ sets a cookie: each client must get its own."""
    cookies = [stack.csrf_headers(source="127.0.0.70")["Cookie"] for _ in range(2)]
    assert cookies[0] != cookies[1]


def test_a_static_file_is_served_by_nginx_from_disk_with_a_long_cache_lifetime(stack: Stack):
    on_disk = (stack.static_root / "admin" / "css" / "base.css").read_bytes()

    reply = stack.request("GET", "/static/admin/css/base.css")

    assert reply.status == 200
    assert reply.body == on_disk
    assert reply.header("Cache-Control") == "public, max-age=31536000, immutable"
    # Django (production settings) serves no static files at all; gunicorn never saw this request.
    assert "/static/admin/css/base.css" not in stack.log("web-access.log")


def test_a_static_file_is_sent_precompressed_to_clients_that_accept_gzip(stack: Stack):
    precompressed = (stack.static_root / "admin" / "css" / "base.css.gz").read_bytes()

    reply = stack.request("GET", "/static/admin/css/base.css", headers={"Accept-Encoding": "gzip"})

    assert reply.header("Content-Encoding") == "gzip"
    # The very bytes of the .gz file, not a fresh compression by nginx.
    assert reply.body == precompressed
    assert gzip.decompress(reply.body) == (stack.static_root / "admin" / "css" / "base.css").read_bytes()


def test_an_unknown_host_is_dropped_without_an_answer(stack: Stack):
    with pytest.raises(http.client.RemoteDisconnected):
        stack.request("GET", "/healthz", https=False, host="unknown.example")


def test_an_unknown_name_gets_no_tls_certificate(stack: Stack):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", stack.https_port), timeout=5) as raw,
        pytest.raises(ssl.SSLError),
    ):
        context.wrap_socket(raw, server_hostname="unknown.example")


def test_plain_http_is_redirected_to_https(stack: Stack):
    reply = stack.request("GET", "/api/v1/users/me/?page=2", https=False, host="localhost")

    assert reply.status == 301
    assert reply.header("Location") == f"https://localhost:{stack.https_port}/api/v1/users/me/?page=2"


def test_the_tls_server_refuses_ciphers_outside_the_mozilla_intermediate_profile(stack: Stack):
    context = stack.tls_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    # RSA key exchange without forward secrecy: a cipher nginx's defaults would accept.
    context.set_ciphers("AES128-SHA256")
    with (
        socket.create_connection(("127.0.0.1", stack.https_port), timeout=5) as raw,
        pytest.raises(ssl.SSLError),
    ):
        context.wrap_socket(raw, server_hostname="localhost")


def test_the_tls_server_negotiates_tls_1_3(stack: Stack):
    with (
        socket.create_connection(("127.0.0.1", stack.https_port), timeout=5) as raw,
        stack.tls_context().wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() == "TLSv1.3"


def test_a_body_over_the_limit_gets_413_in_the_api_error_shape(stack: Stack):
    body = b"{" + b" " * (1024 * 1024 + 1) + b"}"

    reply = stack.request(
        "POST",
        "/api/v1/auth/login/",
        body=body,
        headers={"Content-Type": "application/json"},
        source="127.0.0.11",
    )

    assert reply.status == 413
    assert reply.json()["error"]["code"] == "request_too_large"
    assert reply.json()["request_id"] == reply.header("X-Request-ID")


@pytest.mark.parametrize(
    ("path", "source"), [("/api/v1/auth/login/", "127.0.0.12"), ("/admin/login/", "127.0.0.13")]
)
def test_a_burst_on_a_login_endpoint_gets_429(stack: Stack, path: str, source: str):
    credentials = json.dumps({"email": "nobody@example.com", "password": "guess"}).encode()

    statuses = [
        stack.request(
            "POST", path, body=credentials, headers={"Content-Type": "application/json"}, source=source
        ).status
        for _ in range(12)
    ]

    # 1 + a burst of 3 reach Django (whatever it answers a bad login); nginx refuses the rest itself.
    assert statuses[4:] == [429] * 8, statuses
    assert wait_for(lambda: len(access_log_lines(stack, path=path, client=source)) >= 4)
    assert len(access_log_lines(stack, path=path, client=source)) == 4


def wait_for(condition: Callable[[], bool], timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def access_log_lines(stack: Stack, *, path: str, client: str) -> list[dict[str, str]]:
    """The requests gunicorn served for `path` from `client` (as nginx reported it)."""
    lines = [json.loads(line) for line in stack.log("web-access.log").splitlines() if line.strip()]
    return [line for line in lines if line["path"] == path and line["remote_addr"] == client]


def test_the_429_answer_is_in_the_api_error_shape_and_says_when_to_retry(stack: Stack):
    for _ in range(5):
        reply = stack.request(
            "POST",
            "/api/v1/auth/token/",
            body=b"{}",
            headers={"X-Request-ID": 'x","request_id":"forged'},
            source="127.0.0.14",
        )
    assert reply.status == 429
    assert reply.json()["error"]["code"] == "throttled"
    assert reply.json()["request_id"] == reply.header("X-Request-ID") != 'x","request_id":"forged'
    # The stack's login rate, 6r/m, frees a request every 10 s.
    assert reply.header("Retry-After") == "10"
    assert reply.all("X-Content-Type-Options") == ["nosniff"]


@pytest.mark.parametrize(("path", "status"), [("/admin/login/", 200), ("/api/v1/users/me/", 401)])
def test_production_security_headers_are_on_html_and_api_responses(stack: Stack, path: str, status: int):
    reply = stack.request("GET", path)

    assert reply.status == status
    expected = {
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    for name, value in expected.items():
        # Exactly once: nginx fills in only what Django did not send.
        assert reply.all(name) == [value], name
    assert "default-src 'self'" in (reply.header("Content-Security-Policy") or "")


def test_static_files_carry_the_security_headers_too(stack: Stack):
    reply = stack.request("GET", "/static/admin/css/base.css")

    assert reply.all("X-Content-Type-Options") == ["nosniff"]
    assert reply.all("Cross-Origin-Resource-Policy") == ["same-site"]
    assert reply.all("Strict-Transport-Security") == ["max-age=31536000; includeSubDomains; preload"]
    assert reply.all("Content-Security-Policy") == [
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    ]


def test_the_request_id_passes_from_the_client_through_nginx_to_the_access_log(stack: Stack):
    reply = stack.request("GET", "/healthz", headers={"X-Request-ID": "trace-me-42"})

    assert reply.header("X-Request-ID") == "trace-me-42"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "trace-me-42" not in stack.log("web-access.log"):
        time.sleep(0.1)
    lines = [json.loads(line) for line in stack.log("web-access.log").splitlines() if line.strip()]
    assert {"request_id": "trace-me-42", "path": "/healthz", "status": "200"}.items() <= next(
        line for line in lines if line["request_id"] == "trace-me-42"
    ).items()


# --- hostile input: nginx refuses it in the API's error shape, and no header reaches a cache ----

NGINX_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
# A client's id written to break out of the JSON string nginx pastes it into.
FORGED_REQUEST_ID = 'x","request_id":"forged'
PASSWORD = "a-long-passphrase"


@pytest.fixture(scope="module")
def readers(stack: Stack) -> dict[str, dict[str, str]]:
    """The headers of the three kinds of client: anonymous, an API token, a browser session."""
    token = _api_token(stack, "reader-token@example.com", source="127.0.0.60")
    stack.create_user("reader-session@example.com", PASSWORD)
    login = stack.request(
        "POST",
        "/api/v1/auth/login/",
        body=json.dumps({"email": "reader-session@example.com", "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json", **stack.csrf_headers(source="127.0.0.61")},
        source="127.0.0.61",
    )
    assert login.status == 200, login.body
    session = next(c for c in login.all("Set-Cookie") if c.startswith("__Host-sessionid="))
    return {
        "anonymous": {},
        "token": {"Authorization": f"Token {token}"},
        "session": {"Cookie": session.split(";")[0]},
    }


@pytest.fixture(scope="module")
def three_published_articles(stack: Stack) -> None:
    """Enough for a second page at page_size=1, so a page has both a next and a previous link."""
    code = (
        "from apps.users.models import User\n"
        "from apps.articles import services\n"
        "author = User.objects.create_user('pages@example.com', 'a-long-passphrase')\n"
        "for n in range(3):\n"
        "    services.article_publish(article=services.article_create(author=author, title=f'Paged {n}'))\n"
    )
    created = stack.manage("shell", "--no-imports", "-c", code)
    assert created.returncode == 0, created.stderr


HOSTILE_ORIGINS = {
    "another-port": ({"Host": "localhost:6666"}, ""),
    "the-default-port-written-out": ({"Host": "localhost:443"}, ""),
    "no-port": ({"Host": "localhost"}, ""),
    "upper-case-and-a-port": ({"Host": "LOCALHOST:6666"}, ""),
    "forwarded-headers": (
        {
            "X-Forwarded-Host": "evil.example:6666",
            "X-Forwarded-Port": "6666",
            "X-Forwarded-Proto": "http",
            "Forwarded": "host=evil.example:6666;proto=http",
        },
        "",
    ),
    "an-absolute-request-target": ({}, "https://localhost:6666"),
}


@pytest.mark.parametrize("hostile", HOSTILE_ORIGINS, ids=list(HOSTILE_ORIGINS))
def test_no_host_port_or_forwarded_header_changes_the_links_cached_for_other_clients(
    stack: Stack, readers: dict[str, dict[str, str]], three_published_articles: None, hostile: str
):
    """The hostile request comes first on a cold URL, so it is the one every cache stores."""
    headers, target_prefix = HOSTILE_ORIGINS[hostile]
    # The second page (its cursor from the first), so the page has both a next and a previous link.
    first_page = stack.request("GET", f"/api/v1/articles/?page_size=1&probe={hostile}").json()
    path = "/api/v1/articles/?" + urlsplit(first_page["next"]).query
    errors_before = len(stack.error_lines())

    first = stack.request("GET", target_prefix + path, headers=headers)
    served = {name: stack.request("GET", path, headers=client) for name, client in readers.items()}

    assert first.status == 200, first.body
    assert first.header("X-Cache-Status") == "MISS"
    # The anonymous client is answered from the micro-cache entry the hostile request filled;
    # the others from Django's page cache, filled by the same request.
    assert served["anonymous"].header("X-Cache-Status") == "HIT"
    for name, reply in {"hostile": first, **served}.items():
        assert reply.status == 200, (name, reply.body)
        links = reply.json()
        assert links["next"].startswith(f"{stack.origin}/api/v1/articles/?"), (name, links["next"])
        assert links["previous"].startswith(f"{stack.origin}/api/v1/articles/?"), (name, links["previous"])
    assert stack.error_lines()[errors_before:] == []


@pytest.mark.parametrize("host", ["unknown.example", "127.0.0.2", "localhost.evil.example"])
def test_a_tls_connection_for_the_site_asking_for_another_host_gets_a_bare_421(stack: Stack, host: str):
    reply = stack.request("GET", "/", host=host)

    assert reply.status == 421
    assert reply.header("Server") == "nginx"
    assert b"nginx/" not in reply.body
    assert b"Welcome" not in reply.body


def test_a_malformed_request_to_the_catch_all_server_does_not_name_the_nginx_version(stack: Stack):
    answer = stack.send_raw(b"NOT A REQUEST\r\n\r\n")

    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"\r\nServer: nginx\r\n" in answer
    assert b"nginx/" not in answer


@pytest.mark.parametrize(
    "request_head",
    [
        b"NOT A REQUEST\r\n\r\n",
        b"GET /api/v1/articles/ HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\n\r\n",
        # nginx's own answers would be 501 and 505: server errors, and HTML.
        b"POST /api/v1/auth/token/ HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n"
        b"Connection: close\r\n\r\n0\r\n\r\n",
        b"GET /api/v1/articles/ HTTP/2.0\r\nHost: localhost\r\n\r\n",
    ],
    ids=["no-request-line", "two-hosts", "unknown-transfer-encoding", "http-2-in-text"],
)
def test_a_malformed_request_on_the_site_gets_400_in_the_api_error_shape(stack: Stack, request_head: bytes):
    answer = stack.send_raw(request_head, https=True)

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), head
    assert b"\r\nContent-Type: application/json\r\n" in head
    assert json.loads(body)["error"]["code"] == "bad_request"


# Requests nginx answers itself, each with the status and error code it must give.
NGINX_REFUSALS = {
    "bad-content-length": ("POST", "/api/v1/articles/", {"Content-Length": "abc"}, None, 400, "bad_request"),
    "header-over-8k": ("GET", "/api/v1/articles/", {"X-Padding": "a" * 9000}, None, 400, "bad_request"),
    "trace": ("TRACE", "/api/v1/articles/", {}, None, 405, "method_not_allowed"),
    "post-to-a-static-file": ("POST", "/static/admin/css/base.css", {}, b"{}", 405, "method_not_allowed"),
    "body-over-the-limit": (
        "POST",
        "/api/v1/articles/",
        {"Content-Type": "application/json"},
        b"{" + b" " * (1024 * 1024 + 1) + b"}",
        413,
        "request_too_large",
    ),
    "url-over-8k": ("GET", "/api/v1/articles/?q=" + "a" * 9000, {}, None, 414, "uri_too_long"),
}


@pytest.mark.parametrize("refusal", NGINX_REFUSALS, ids=list(NGINX_REFUSALS))
def test_nginx_refuses_hostile_input_in_the_api_error_shape_with_a_safe_request_id(
    stack: Stack, refusal: str
):
    method, path, headers, body, status, code = NGINX_REFUSALS[refusal]

    reply = stack.request(
        method, path, body=body, headers={**headers, "X-Request-ID": FORGED_REQUEST_ID}, source="127.0.0.62"
    )

    assert reply.status == status, reply.body[:300]
    assert reply.header("Content-Type") == "application/json"
    answer = reply.json()
    assert set(answer) == {"error", "request_id"}
    assert answer["error"]["code"] == code
    assert answer["error"]["message"]
    # The forged id was replaced by nginx's own, which the response header repeats.
    assert NGINX_REQUEST_ID.match(answer["request_id"]), answer
    assert reply.header("X-Request-ID") == answer["request_id"]
    assert reply.all("X-Content-Type-Options") == ["nosniff"]
    # Nothing reached Django: gunicorn never logged the request.
    assert answer["request_id"] not in stack.log("web-access.log")


def test_a_url_over_8k_sent_over_http2_gets_the_same_414_as_over_http_1_1(stack: Stack):
    """HTTP/2 measures a URL compressed, so it is not stopped where an HTTP/1.1 request line is."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed: no HTTP/2 client to send the request with")
    url = f"{stack.origin}/api/v1/articles/?q={'a' * 9000}"
    result = subprocess.run(
        [curl, "--silent", "--http2", "--cacert", str(stack.cert), "--include", url],
        capture_output=True,
        timeout=30,
        check=False,
    )
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/2 414"), result.stdout[:300] + result.stderr
    assert json.loads(body)["error"]["code"] == "uri_too_long"


def _nginx_error_lines(stack: Stack) -> list[str]:
    return [
        line
        for name in ("keel-error.log", "nginx-error.log")
        for line in stack.log(name).splitlines()
        if re.search(r"\[(error|crit|alert|emerg)\]", line)
    ]


@pytest.mark.parametrize(
    "credentials", [{}, {"Authorization": "Token not-a-real-token"}], ids=["anonymous", "token"]
)
def test_an_api_url_just_under_the_limit_reaches_django_and_logs_no_nginx_error(
    stack: Stack, credentials: dict[str, str]
):
    """The micro-cache keeps the URL in its key, beside gunicorn's headers: a long query string
    must still get Django's answer, not a 503 for an "upstream sent too big header"."""
    errors_before = len(_nginx_error_lines(stack))
    ordering = ",".join(["title"] * 1300)  # about 7.8 KB, a field Django refuses
    for path, status in [
        (f"/api/v1/articles/?search={'a' * 7900}", 200 if not credentials else 401),
        (f"/api/v1/articles/?ordering={ordering}", 400 if not credentials else 401),
    ]:
        reply = stack.request("GET", path, headers=credentials, source="127.0.0.63")
        assert reply.status == status, reply.body[:300]
        if status >= 400:
            assert set(reply.json()) == {"error", "request_id"}
    assert _nginx_error_lines(stack)[errors_before:] == []


def test_a_missing_static_or_media_file_is_a_404_without_an_nginx_error_line(stack: Stack):
    errors_before = len(_nginx_error_lines(stack))
    for path in ("/static/no-such-file.css", "/media/no-such-upload.png", "/media/%ff"):
        assert stack.request("GET", path).status == 404
    assert _nginx_error_lines(stack)[errors_before:] == []


# Ids nginx and Django must agree on: accepted by both (True) or replaced by both (False).
REQUEST_IDS = {
    "trace-me-43": True,
    "a:b.c_d-e": True,
    "a" * 128: True,
    "a" * 129: False,
    FORGED_REQUEST_ID: False,
    "a b": False,
    "a/b": False,
    "caf\u00e9": False,
}


@pytest.mark.parametrize("request_id", REQUEST_IDS, ids=[f"id{n}" for n in range(len(REQUEST_IDS))])
def test_nginx_and_django_accept_the_same_request_ids(stack: Stack, request_id: str):
    from_nginx = stack.request("TRACE", "/api/v1/articles/", headers={"X-Request-ID": request_id})
    from_django = stack.request("GET", "/api/v1/users/me/", headers={"X-Request-ID": request_id})

    assert (from_nginx.status, from_django.status) == (405, 401)
    ids = {from_nginx.json()["request_id"], from_django.json()["request_id"]}
    if REQUEST_IDS[request_id]:
        assert ids == {request_id}
        return
    assert request_id not in ids
    assert all(NGINX_REQUEST_ID.match(value) for value in ids), ids
    # The id nginx made up is the one it passed on: Django answered and logged that same id.
    django_id = from_django.json()["request_id"]
    assert wait_for(lambda: f'"request_id":"{django_id}"' in stack.log("keel-access.log"))
    assert wait_for(lambda: django_id in stack.log("web-access.log"))


def test_a_dead_upstream_gets_503_in_the_api_error_shape_with_retry_after(stack: Stack):
    supervisor = stack.supervisor()
    supervisor.stopProcess("keel:web")
    try:
        reply = stack.request("GET", "/api/v1/users/me/", headers={"X-Request-ID": FORGED_REQUEST_ID})
    finally:
        supervisor.startProcess("keel:web")
        wait_until(stack.healthy, timeout=60, what="gunicorn to answer again")

    assert reply.status == 503
    assert reply.json()["error"]["code"] == "unavailable"
    assert NGINX_REQUEST_ID.match(reply.json()["request_id"])
    assert reply.header("Retry-After") == "5"
    assert reply.all("X-Content-Type-Options") == ["nosniff"]


def test_nginx_status_answers_only_from_this_host(stack: Stack):
    local = stack.request("GET", "/nginx_status", https=False, host="127.0.0.1")
    other = stack.request("GET", "/nginx_status", https=False, host="127.0.0.1", source="127.0.0.2")

    assert local.status == 200
    assert b"Active connections" in local.body
    assert other.status == 403


def test_the_worker_runs_a_task_queued_from_the_django_shell(stack: Stack):
    result = stack.manage(
        "shell",
        "--no-imports",
        "-c",
        "from apps.core.tasks.queueing import ping; print(ping.delay().get(timeout=20))",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pong"


def test_beat_is_running_and_logging(stack: Stack):
    assert stack.pid("beat")
    assert "beat: Starting..." in stack.log("beat.log")


def _last_heartbeat(stack: Stack) -> float:
    printed = stack.manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.core.cache import cache; from apps.core.tasks.periodic import HEARTBEAT_CACHE_KEY; "
        "print(cache.get(HEARTBEAT_CACHE_KEY) or 0)",
    )
    assert printed.returncode == 0, printed.stderr
    return float(printed.stdout.strip().splitlines()[-1])


def test_beats_heartbeat_advances(stack: Stack):
    first = wait_until(lambda: _last_heartbeat(stack), timeout=30, what="a first heartbeat")
    wait_until(lambda: _last_heartbeat(stack) > first, timeout=30, what="the heartbeat to advance")


def test_a_task_queued_through_the_api_is_run_by_the_worker(stack: Stack):
    token = _api_token(stack, "grace@example.com", source="127.0.0.11")
    auth = {"Content-Type": "application/json", "Authorization": f"Token {token}"}
    article = stack.request(
        "POST",
        "/api/v1/articles/",
        body=json.dumps({"title": "Indexed by the worker"}).encode(),
        headers=auth,
    )
    assert article.status == 201, article.body
    published = stack.request("POST", f"/api/v1/articles/{article.json()['slug']}/publish/", headers=auth)
    assert published.status == 200, published.body

    def indexed_titles() -> list[str]:
        # Authenticated, so nginx's micro-cache cannot answer with the result of an earlier poll.
        answer = stack.request("GET", "/api/v1/articles/autocomplete/?q=indexed+by", headers=auth)
        body = answer.json()
        return [item["title"] for item in body["results"]] if body["served_from"] == "redis" else []

    # The request only queued index_article; the title reaches Redis when the worker runs it.
    wait_until(lambda: indexed_titles() == ["Indexed by the worker"], timeout=30, what="the worker to index")


def _ping_through_the_broker(stack: Stack, timeout: float) -> str:
    # Not the current app: shared tasks queued later by other tests would go to this stack's broker.
    client = Celery(
        broker=stack.env["REDIS_URL"] + "/1",
        backend=stack.env["CELERY_RESULT_BACKEND"],
        set_as_current=False,
    )
    try:
        return str(client.send_task("core.ping").get(timeout=timeout))
    finally:
        client.close()


@pytest.mark.parametrize("program", ["web", "worker", "beat", "nginx"])
@pytest.mark.faults
def test_supervisor_restarts_a_program_killed_with_sigkill_and_the_stack_answers_within_15_s(
    stack: Stack, program: str
):
    """Broke: one program of the production stack (gunicorn, the worker, beat or nginx), SIGKILLed.
    Saw: supervisord started it again and the stack answered /healthz within 15 s; a killed worker's
    replacement runs tasks.
    Lost: nothing; the restarted program serves as before.
    """
    old = stack.pid(program)
    assert old
    stack.remember()
    started = time.monotonic()

    os.kill(old, signal.SIGKILL)

    new = None
    while time.monotonic() - started < RESTART_DEADLINE:
        new = stack.pid(program)
        if new and new != old and stack.healthy():
            break
        time.sleep(0.2)
    assert new, f"{program} was not running again within {RESTART_DEADLINE} s"
    assert new != old
    assert stack.healthy()
    assert time.monotonic() - started < RESTART_DEADLINE
    if program == "worker":
        # The new worker consumes the queue (it may still be connecting: allow it the time).
        assert _ping_through_the_broker(stack, timeout=30) == "pong"
    stack.remember()


def test_a_graceful_reload_under_a_steady_stream_of_requests_drops_none(stack: Stack):
    master = stack.pid("web")
    assert master
    old_workers = {pid for pid, _ in descendants(master)} - {master}
    outcomes: Counter[str] = Counter()
    stop = threading.Event()

    slowest = [0.0]

    def stream(source: str) -> None:
        # While the new worker imports the app, requests wait in the socket's queue: as long as
        # nginx waits for gunicorn (its proxy timeout), they are late, not lost.
        connection = http.client.HTTPSConnection(
            "localhost", stack.https_port, context=stack.tls_context(), timeout=35, source_address=(source, 0)
        )
        while not stop.is_set():
            try:
                sent = time.monotonic()
                connection.request("GET", "/healthz", headers={"Host": f"localhost:{stack.https_port}"})
                response = connection.getresponse()
                response.read()
                outcomes[str(response.status)] += 1
                slowest[0] = max(slowest[0], time.monotonic() - sent)
            except (OSError, http.client.HTTPException) as error:
                outcomes[type(error).__name__] += 1
                connection.close()
        connection.close()

    threads = [threading.Thread(target=stream, args=(f"127.0.0.{20 + n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        stack.supervisor().signalProcess("keel:web", "HUP")
        # The reload is done when none of the old workers is left and new ones answer.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            workers = {pid for pid, _ in descendants(master)} - {master}
            if workers and not workers & old_workers:
                break
            time.sleep(0.2)
        time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert workers, "gunicorn has no workers after the reload"
    assert not workers & old_workers, "gunicorn did not replace its workers"
    assert stack.pid("web") == master
    assert set(outcomes) == {"200"}, f"{outcomes}; slowest answer {slowest[0]:.1f} s"
    assert outcomes["200"] > 20
    print(f"reload: {outcomes['200']} requests answered 200, slowest {slowest[0]:.2f} s")


def test_stopping_the_stack_leaves_no_process_behind(stack: Stack):
    stack.remember()
    processes = set(stack.seen)
    assert len(processes) >= 7  # supervisord, nginx x2, gunicorn x2, worker x2, beat

    exit_code = stack.stop()

    assert exit_code == 0
    deadline = time.monotonic() + 10
    while alive(processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alive(processes) == set()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", stack.http_port), timeout=2)
