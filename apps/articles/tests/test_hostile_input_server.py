"""Hostile input against gunicorn with production settings, no proxy in front (`make run` or
another proxy hides nothing either): every class of input gets a 4xx in the error shape, the
server logs no ERROR line and no traceback, nothing is stored, and nothing one client sends
changes what another is served. The same classes, in process: test_hostile_input.py beside this file.
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.support.http import Reply
from tests.support.net import closed_port
from tests.support.redis_servers import redis_server
from tests.support.web import Web, running_web

pytestmark = pytest.mark.integration

# Past the recursion limit of `json` on every supported Python (3.13 parses a thousand levels).
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
ADMIN_EMAIL = "admin@example.com"
# Production's session cookie name; the value's escape is a NUL once Django unquotes it.
NUL_SESSION_COOKIE = '__Host-sessionid="aaaa\\000bbbb"'


def _production_env(**extra: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # TLS is nginx's job; here gunicorn is reached over plain HTTP, as behind any proxy.
        "SECURE_SSL_REDIRECT": "false",
        "LOG_FORMAT": "json",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        **extra,
    }


@dataclass
class Server:
    web: Web
    database_url: str
    token: str
    session: str
    log_offset: int = 0

    def send(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        source: str = "127.0.0.1",
    ) -> Reply:
        """One raw request from `source` (any 127.x address: each has its own throttles and
        lockouts); the header values and the body go out exactly as given."""
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.web.port, timeout=20, source_address=(source, 0)
        )
        all_headers = {"Host": f"127.0.0.1:{self.web.port}", "Accept": "application/json", **(headers or {})}
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in all_headers.items():
                connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(body or b"")))
            connection.endheaders(body)
            response = connection.getresponse()
            return Reply(response.status, response.getheaders(), response.read())
        finally:
            connection.close()

    def authorized(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}

    def same_origin(self) -> dict[str, str]:
        """The headers the site's own page sends with a session login, so the request gets past
        the CSRF check to the input under test."""
        reply = self.send("GET", "/api/v1/auth/csrf/")
        assert reply.status == 200, reply.body
        cookie = reply.header("set-cookie").split(";", 1)[0]
        return {
            "Origin": f"http://127.0.0.1:{self.web.port}",
            "Cookie": cookie,
            "X-CSRFToken": reply.json()["csrf_token"],
        }

    def rows(self, table: str) -> list[tuple]:
        with psycopg.connect(self.database_url) as connection:
            return connection.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # noqa: S608

    def new_log(self) -> str:
        log = self.web.log()
        new, self.log_offset = log[self.log_offset :], len(log)
        return new


def _assert_no_error_logged(log: str) -> None:
    """Neither an ERROR line (JSON from Django, text from gunicorn) nor a traceback."""
    assert "Traceback" not in log, log[-3000:]
    for line in log.splitlines():
        try:
            level = json.loads(line).get("level", "")
        except (ValueError, AttributeError):
            level = "ERROR" if re.search(r"\[(ERROR|CRITICAL)\]", line) else ""
        assert level not in ("ERROR", "CRITICAL"), line


def _error(reply: Reply, status: int) -> dict:
    assert reply.status == status, reply.body[:500]
    body = reply.json()
    assert set(body) == {"error", "request_id"}
    assert body["request_id"] == reply.header("x-request-id")
    return body["error"]


@pytest.fixture(scope="module")
def server(stack_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """gunicorn with production settings on a private database and Redis, with an author's
    token, a staff session, and two published articles."""
    log_dir = tmp_path_factory.mktemp("hostile-input")
    with redis_server() as redis_port_server:
        env = _production_env(
            DATABASE_URL=stack_database, REDIS_URL=f"redis://127.0.0.1:{redis_port_server.port}"
        )
        with running_web(env, log_dir) as web:
            web.manage("migrate", "--no-input")
            code = (
                "from django.conf import settings; from django.test import Client; "
                "from rest_framework.authtoken.models import Token; from apps.users.models import User; "
                f"user = User.objects.create_superuser({ADMIN_EMAIL!r}, 'a long admin password'); "
                "client = Client(); client.force_login(user); "
                "session = client.cookies[settings.SESSION_COOKIE_NAME].value; "
                "print(Token.objects.create(user=user).key, session)"
            )
            token, session = web.manage("shell", "--no-imports", "-c", code).split()
            running = Server(web, stack_database, token, session)
            for number in range(2):
                created = running.send(
                    "POST",
                    "/api/v1/articles/",
                    body=json.dumps({"title": f"Published {number}", "body": "text"}).encode(),
                    headers={**running.authorized(), "Content-Type": "application/json"},
                )
                assert created.status == 201, created.body
                slug = created.json()["slug"]
                publish = f"/api/v1/articles/{slug}/publish/"
                published = running.send("POST", publish, headers=running.authorized())
                assert published.status == 200, published.body
            running.new_log()
            yield running


@pytest.fixture
def clean_log(server: Server) -> Iterator[Server]:
    """The server, with what this test made it log checked for ERROR lines afterwards."""
    server.new_log()
    yield server
    _assert_no_error_logged(server.new_log())


@pytest.mark.parametrize("path", ["/api/v1/articles/", "/api/v1/users/me/", "/", "/articles/"])
def test_a_nul_in_the_session_cookie_is_400_and_logs_no_error(clean_log: Server, path: str):
    sessions = clean_log.rows("django_session")
    reply = clean_log.send("GET", path, headers={"Cookie": NUL_SESSION_COOKIE})
    if path.startswith("/api/"):
        assert _error(reply, 400)["code"] == "bad_request"
    else:
        assert reply.status == 400
        assert reply.header("content-type").startswith("text/html")
    assert reply.header("x-request-id")
    assert clean_log.rows("django_session") == sessions


@pytest.mark.parametrize("path", ["/api/v1/auth/login/", "/api/v1/auth/token/", "/api/v1/articles/"])
def test_deeply_nested_json_is_400_and_stores_nothing(clean_log: Server, path: str):
    articles = clean_log.rows("articles_article")
    headers = {**clean_log.authorized(), "Content-Type": "application/json"}
    if path == "/api/v1/auth/login/":
        headers = {**clean_log.same_origin(), "Content-Type": "application/json"}
    reply = clean_log.send("POST", path, body=DEEP_JSON, headers=headers)
    assert _error(reply, 400)["code"] == "parse_error"
    assert clean_log.rows("articles_article") == articles


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", b'{"title": "changed"}'),
        ("DELETE", "", None),
        ("POST", "publish/", None),
        ("POST", "unpublish/", None),
        ("POST", "schedule/", b'{"publish_at": "2999-01-01T00:00:00Z"}'),
    ],
)
def test_a_nul_in_an_article_path_is_400_and_changes_nothing(
    clean_log: Server, method: str, suffix: str, body: bytes | None
):
    articles = clean_log.rows("articles_article")
    headers = {**clean_log.authorized(), "Content-Type": "application/json"}
    reply = clean_log.send(method, f"/api/v1/articles/%00/{suffix}", body=body, headers=headers)
    assert _error(reply, 400)["code"] == "bad_request"
    assert clean_log.rows("articles_article") == articles


def test_a_raw_nul_in_the_authorization_header_is_400(clean_log: Server):
    # gunicorn refuses it itself (its own 400 page, a warning line); Django's check is for a
    # server that passes it on (runserver, `make run`), in apps/articles/tests/test_hostile_input.py.
    reply = clean_log.send("GET", "/api/v1/users/me/", headers={"Authorization": "Token abc\x00def"})
    assert reply.status == 400


def test_a_nul_in_the_admin_changelist_query_is_400_for_a_signed_in_admin(clean_log: Server):
    changelist = "/admin/articles/article/"
    cookie = {"Cookie": f"__Host-sessionid={clean_log.session}"}
    # The session is the admin's, so without the check the admin would run the query, not redirect.
    me = clean_log.send("GET", "/api/v1/users/me/", headers=cookie)
    assert (me.status, me.json()["email"]) == (200, ADMIN_EMAIL)
    reply = clean_log.send("GET", changelist + "?status=%00", headers=cookie)
    assert reply.status == 400
    assert reply.header("content-type").startswith("text/html")


def test_one_clients_host_port_never_reaches_another_clients_links(clean_log: Server):
    """The article list is cached (the view cache, in Redis): a Host with another port must not put
    its links into what other clients are served."""
    page = "/api/v1/articles/?page_size=1"
    for _ in range(2):  # the first fills the cache, the second is served from it
        poisoned = clean_log.send("GET", page, headers={"Host": "localhost:6666"})
        assert poisoned.json()["next"].startswith("http://localhost:6666/")
    honest = clean_log.send("GET", page, headers={"Host": "localhost"})
    assert honest.status == 200
    assert honest.json()["next"].startswith("http://localhost/api/v1/articles/?cursor=")
    assert clean_log.send("GET", page).json()["next"].startswith(f"http://127.0.0.1:{clean_log.web.port}/")


def test_api_errors_from_django_have_the_error_shape(clean_log: Server):
    assert _error(clean_log.send("GET", "/api/v1/articles/no-such-article/"), 404)["code"] == "not_found"
    _error(clean_log.send("GET", "/api/v1/articles/?format=xyz"), 404)


def test_a_multipart_field_over_the_limit_is_413_and_logs_no_error(clean_log: Server):
    boundary = "hostileinputboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="email"\r\n\r\n'.encode()
        + b"a" * 3_000_000
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {**clean_log.same_origin(), "Content-Type": f"multipart/form-data; boundary={boundary}"}
    reply = clean_log.send("POST", "/api/v1/auth/login/", body=body, headers=headers)
    assert _error(reply, 413)["code"] == "request_too_large"


def test_locked_out_and_throttled_logins_say_when_to_retry(clean_log: Server):
    """django-axes locks an address and email out at the 5th failure; DRF's login throttle allows
    10 a minute. Both 429s carry Retry-After."""
    body = json.dumps({"email": ADMIN_EMAIL, "password": "wrong"}).encode()
    headers = {**clean_log.same_origin(), "Content-Type": "application/json"}
    replies = [
        clean_log.send("POST", "/api/v1/auth/login/", body=body, headers=headers, source="127.0.0.2")
        for _ in range(11)
    ]
    assert [reply.status for reply in replies[:4]] == [401] * 4
    locked = replies[4]
    assert _error(locked, 429)["code"] == "locked_out"
    assert int(locked.header("retry-after")) == 15 * 60
    throttled = replies[10]
    assert _error(throttled, 429)["code"] == "throttled"
    assert 0 < int(throttled.header("retry-after")) <= 60


def test_readyz_during_an_outage_names_what_is_down_and_logs_where(tmp_path: Path):
    """Broke: the database and Redis, both unreachable (closed ports) for the whole test.
    Saw: /readyz through a proxy says 503 and which checks failed, without hosts, ports or error
    text; those are in the server's WARNING line. An operator's local unproxied curl sees them too.
    Lost: nothing (nothing is written)."""
    database_port, redis_port = closed_port(), closed_port()
    env = _production_env(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{database_port}/app",
        DATABASE_CONNECT_TIMEOUT="1",
        REDIS_URL=f"redis://127.0.0.1:{redis_port}",
    )
    with running_web(env, tmp_path) as web:
        proxied = web.request("GET", "/readyz", headers={"X-Forwarded-For": "203.0.113.9"})
        assert proxied.status == 503
        assert proxied.json() == {
            "status": "unavailable",
            "checks": {
                "database": {"ok": False},
                "cache": {"ok": False},
                "broker": {"ok": True},
                "beat": {"ok": True},
                "broker_durability": {"ok": True},
            },
        }
        local = web.request("GET", "/readyz")
        assert str(redis_port) in local.json()["checks"]["cache"]["detail"]
        log = web.log()
    warnings = [line for line in log.splitlines() if "readiness check failed" in line]
    assert warnings
    assert {json.loads(line)["level"] for line in warnings} == {"WARNING"}
    assert str(database_port) in warnings[0]
    assert str(redis_port) in warnings[0]
    _assert_no_error_logged(log)
