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

import pytest
from celery import Celery

from tests.support.processes import alive, descendants
from tests.support.stack import Stack
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

# Seconds, not minutes: a restarted gunicorn imports Django before it answers, which a loaded
# 2-core machine has taken more than 10 s to do.
RESTART_DEADLINE = 30


def test_health_check_answers_200_through_nginx(stack: Stack):
    reply = stack.request("GET", "/healthz")
    assert reply.status == 200
    assert reply.json() == {"status": "ok"}
    assert reply.header("Server") == "nginx"


def test_an_authenticated_api_call_answers_200_through_nginx(stack: Stack):
    token = stack.api_token("ada@example.com", source="127.0.0.10")

    me = stack.request("GET", "/api/v1/users/me/", headers={"Authorization": f"Token {token}"})

    assert me.status == 200
    assert me.json()["email"] == "ada@example.com"


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
    wait_until(
        lambda: len(access_log_lines(stack, path=path, client=source)) >= 4, 5, what="4 access log lines"
    )
    assert len(access_log_lines(stack, path=path, client=source)) == 4


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
    wait_until(lambda: "trace-me-42" in stack.log("web-access.log"), 5, what="gunicorn's access log line")
    lines = [json.loads(line) for line in stack.log("web-access.log").splitlines() if line.strip()]
    assert {"request_id": "trace-me-42", "path": "/healthz", "status": "200"}.items() <= next(
        line for line in lines if line["request_id"] == "trace-me-42"
    ).items()


# --- hostile input: nginx refuses it in the API's error shape, and no header reaches a cache ----

NGINX_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
# A client's id written to break out of the JSON string nginx pastes it into.
FORGED_REQUEST_ID = 'x","request_id":"forged'


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
        b"GET /api/v1/users/me/ HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\n\r\n",
        # nginx's own answers would be 501 and 505: server errors, and HTML.
        b"POST /api/v1/auth/token/ HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n"
        b"Connection: close\r\n\r\n0\r\n\r\n",
        b"GET /api/v1/users/me/ HTTP/2.0\r\nHost: localhost\r\n\r\n",
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
    "bad-content-length": ("POST", "/api/v1/users/me/", {"Content-Length": "abc"}, None, 400, "bad_request"),
    "header-over-8k": ("GET", "/api/v1/users/me/", {"X-Padding": "a" * 9000}, None, 400, "bad_request"),
    "trace": ("TRACE", "/api/v1/users/me/", {}, None, 405, "method_not_allowed"),
    "post-to-a-static-file": ("POST", "/static/admin/css/base.css", {}, b"{}", 405, "method_not_allowed"),
    "body-over-the-limit": (
        "POST",
        "/api/v1/users/me/",
        {"Content-Type": "application/json"},
        b"{" + b" " * (1024 * 1024 + 1) + b"}",
        413,
        "request_too_large",
    ),
    "url-over-8k": ("GET", "/api/v1/users/me/?q=" + "a" * 9000, {}, None, 414, "uri_too_long"),
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
    url = f"{stack.origin}/api/v1/users/me/?q={'a' * 9000}"
    result = subprocess.run(
        [curl, "--silent", "--http2", "--cacert", str(stack.cert), "--include", url],
        capture_output=True,
        timeout=30,
        check=False,
    )
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/2 414"), result.stdout[:300] + result.stderr
    assert json.loads(body)["error"]["code"] == "uri_too_long"


def test_a_missing_static_or_media_file_is_a_404_without_an_nginx_error_line(stack: Stack):
    errors_before = len(stack.nginx_error_lines())
    for path in ("/static/no-such-file.css", "/media/no-such-upload.png", "/media/%ff"):
        assert stack.request("GET", path).status == 404
    assert stack.nginx_error_lines()[errors_before:] == []


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
    from_nginx = stack.request("TRACE", "/api/v1/users/me/", headers={"X-Request-ID": request_id})
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
    wait_until(
        lambda: f'"request_id":"{django_id}"' in stack.log(f"{stack.slug}-access.log"),
        5,
        what="nginx's log line",
    )
    wait_until(lambda: django_id in stack.log("web-access.log"), 5, what="gunicorn's log line")


def test_a_dead_upstream_gets_503_in_the_api_error_shape_with_retry_after(stack: Stack):
    supervisor = stack.supervisor()
    supervisor.stopProcess(f"{stack.slug}:web")
    try:
        reply = stack.request("GET", "/api/v1/users/me/", headers={"X-Request-ID": FORGED_REQUEST_ID})
    finally:
        supervisor.startProcess(f"{stack.slug}:web")
        wait_until(stack.healthy, timeout=60, what="gunicorn to answer again")

    assert reply.status == 503
    assert reply.json()["error"]["code"] == "unavailable"
    assert NGINX_REQUEST_ID.match(reply.json()["request_id"])
    assert reply.header("Retry-After") == "5"
    assert reply.all("X-Content-Type-Options") == ["nosniff"]


def test_a_browser_gets_nginx_503_and_429_as_pages_with_the_same_headers(stack: Stack):
    html = {"Accept": "text/html,application/xhtml+xml"}
    supervisor = stack.supervisor()
    supervisor.stopProcess(f"{stack.slug}:web")
    try:
        unavailable = stack.request("GET", "/articles/", headers=html)
    finally:
        supervisor.startProcess(f"{stack.slug}:web")
        wait_until(stack.healthy, timeout=60, what="gunicorn to answer again")
    for _ in range(5):
        throttled = stack.request(
            "POST", "/api/v1/auth/token/", body=b"{}", headers=html, source="127.0.0.15"
        )

    for reply, status, retry_after in ((unavailable, 503, "5"), (throttled, 429, "10")):
        assert reply.status == status
        assert reply.header("Content-Type").startswith("text/html")
        assert b"<html" in reply.body
        assert str(status).encode() in reply.body
        assert reply.header("Retry-After") == retry_after
        assert "default-src 'none'" in (reply.header("Content-Security-Policy") or "")
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
def test_supervisor_restarts_a_program_killed_with_sigkill_and_the_stack_answers_within_30_s(
    stack: Stack, program: str
):
    """Broke: one program of the production stack (gunicorn, the worker, beat or nginx), SIGKILLed.
    Saw: supervisord started it again and the stack answered /healthz within 30 s; a killed worker's
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
        # The new worker consumes the queue (it may still be starting: allow it a cold start's time).
        assert _ping_through_the_broker(stack, timeout=90) == "pong"
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
        stack.supervisor().signalProcess(f"{stack.slug}:web", "HUP")
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
    wait_until(lambda: not alive(processes), 10, 0.2, "every process of the stack to exit")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", stack.http_port), timeout=2)
