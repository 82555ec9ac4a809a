"""Read replicas against a real streaming replica: a private primary and a pg_basebackup copy.

The app runs in gunicorn with DATABASE_URL on the primary and DATABASE_REPLICA_URLS on the
replica. Both clusters log every statement, so each test can tell which server ran what.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import suppress
from email.message import Message
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.error import HTTPError

import pytest

from tests.support.net import free_port
from tests.support.postgres import Cluster, primary_and_replica, wait_for_replay
from tests.support.waiting import http_answers, wait_until

ROOT = Path(__file__).resolve().parent.parent
READ_YOUR_WRITES_SECONDS = 30
EMAIL = "reader@example.com"


def app_env(primary: Cluster, replica: Cluster) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": primary.url("app"),
        "DATABASE_REPLICA_URLS": replica.url("app"),
        "DATABASE_READ_YOUR_WRITES_SECONDS": str(READ_YOUR_WRITES_SECONDS),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"),
        "CACHE_KEY_PREFIX": f"replica-test-{os.getpid()}",
    }


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


class Client:
    """An HTTP client with its own cookie jar, authenticated with a token."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url, self.token = base_url, token
        self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict, Message]:
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"{}"), response.headers
        except HTTPError as error:
            return error.code, json.loads(error.read() or b"{}"), error.headers


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[Cluster, Cluster]]:
    with primary_and_replica() as (primary, replica):
        with primary.connect() as connection:
            connection.execute("CREATE DATABASE app")
        yield primary, replica


@pytest.fixture(scope="module")
def token(clusters) -> str:
    primary, replica = clusters
    env = app_env(primary, replica)
    # One process for both: outside a request, every query goes to the primary.
    code = (
        "from django.core.management import call_command; call_command('migrate', verbosity=0);"
        "from apps.users.models import User; from rest_framework.authtoken.models import Token;"
        f"user = User.objects.create_user(email='{EMAIL}', password='x', first_name='Before');"
        "print(Token.objects.create(user=user).key)"
    )
    key = manage(env, "shell", "--no-imports", "-c", code).strip()
    wait_for_replay(primary, replica)
    return key


@pytest.fixture(scope="module")
def base_url(clusters, token) -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--threads",
            "2",
            "--graceful-timeout",
            "5",
        ],
        env=app_env(*clusters),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def answers() -> bool:
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn did not start: {server.stderr.read()!r}")
            return http_answers(url + "/healthz")

        wait_until(answers, 30, 0.2, "gunicorn")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        finally:
            # Whatever did not stop in time (a worker) goes with its group.
            with suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)


def backends_since(cluster: Cluster, started: object) -> list[str]:
    """Queries of the app's connections that started after `started` (the server's clock)."""
    with cluster.connect() as connection:
        rows = connection.execute(
            "SELECT query FROM pg_stat_activity WHERE datname = 'app' AND pid <> pg_backend_pid()"
            " AND query_start > %s",
            [started],
        ).fetchall()
    return [row[0] for row in rows]


def server_clock(cluster: Cluster) -> object:
    with cluster.connect() as connection:
        return connection.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]


def test_migrations_run_on_the_primary_and_reach_the_replica_by_streaming(clusters, token):
    primary, replica = clusters
    with replica.connect("app") as connection:
        in_recovery, applied = connection.execute(
            "SELECT pg_is_in_recovery(), count(*) FROM django_migrations"
        ).fetchone()
    assert in_recovery is True
    assert applied > 0
    assert "CREATE TABLE" in primary.log_since(0)
    assert "CREATE TABLE" not in replica.log_since(0)


def test_a_read_request_runs_on_the_replica_and_not_on_the_primary(clusters, base_url, token):
    primary, replica = clusters
    since = {cluster.name: (cluster.log_size(), server_clock(cluster)) for cluster in clusters}

    status, body, headers = Client(base_url, token).request("GET", "/api/v1/users/me/")

    assert status == 200
    assert body["email"] == EMAIL
    # A read is not a write: the client's next reads stay on the replica too.
    assert not any(cookie.startswith("recent_write=") for cookie in headers.get_all("Set-Cookie", []))
    replica_log = replica.log_since(since["replica"][0])
    assert '"authtoken_token"' in replica_log
    assert '"authtoken_token"' not in primary.log_since(since["primary"][0])
    assert any('"authtoken_token"' in query for query in backends_since(replica, since["replica"][1]))
    assert backends_since(primary, since["primary"][1]) == []


def test_a_client_sees_its_own_write_at_once_while_the_replica_lags(clusters, base_url, token):
    primary, replica = clusters
    writer, other = Client(base_url, token), Client(base_url, token)
    with replica.connect() as connection:
        connection.execute("SELECT pg_wal_replay_pause()")
    try:
        primary_log = primary.log_size()
        status, _, headers = writer.request("PATCH", "/api/v1/users/me/", {"first_name": "After"})
        assert status == 200
        assert "UPDATE" in primary.log_since(primary_log)
        assert any(
            cookie.startswith("recent_write=") and f"Max-Age={READ_YOUR_WRITES_SECONDS}" in cookie
            for cookie in headers.get_all("Set-Cookie", [])
        )

        assert writer.request("GET", "/api/v1/users/me/")[1]["first_name"] == "After"
        # The replica has not replayed the write: a client that did not write still reads from it.
        assert other.request("GET", "/api/v1/users/me/")[1]["first_name"] == "Before"
    finally:
        with replica.connect() as connection:
            connection.execute("SELECT pg_wal_replay_resume()")
    wait_for_replay(primary, replica)
    assert other.request("GET", "/api/v1/users/me/")[1]["first_name"] == "After"
