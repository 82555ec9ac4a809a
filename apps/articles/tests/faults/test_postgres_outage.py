"""PostgreSQL stopped, unreachable, or too slow under a running app: quick 503s, no hung workers.

Every test here runs on a private PostgreSQL cluster (initdb, pg_ctl) whatever database the rest
of the run uses: these failures are PostgreSQL's, and the shared server is never stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.http import Reply
from tests.support.net import silent_server
from tests.support.postgres import Postgres, postgres_cluster
from tests.support.redis_servers import RedisServer, redis_server
from tests.support.waiting import wait_until
from tests.support.web import Web, running_web

pytestmark = [pytest.mark.integration, pytest.mark.faults]

EMAIL = "writer@example.com"
PASSWORD = "a long enough fault-test password"
# Short, so that a regression (a connect that waits for the OS's TCP timeout) shows as a failure
# long before gunicorn's 30 s worker timeout would.
CONNECT_TIMEOUT = "2"


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="module")
def postgres(log_dir: Path, redis: RedisServer) -> Iterator[Postgres]:
    """A private cluster with the schema migrated and one user, shared by this module's tests."""
    with postgres_cluster() as cluster:
        with cluster.cluster.connect() as connection:
            connection.execute("CREATE DATABASE app")
        setup = Web(_env(cluster, redis), log_dir)
        setup.manage("migrate", "--no-input")
        setup.env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
        setup.manage("createsuperuser", "--no-input", "--email", EMAIL)
        yield cluster


def _env(postgres: Postgres, redis: RedisServer, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": postgres.url("app"),
        "DATABASE_CONNECT_TIMEOUT": CONNECT_TIMEOUT,
        "REDIS_URL": redis.url(),
        # No broker in these tests: the tasks that writes queue run in the web process.
        "CELERY_TASK_ALWAYS_EAGER": "true",
        **extra,
    }


def _token_headers(web: Web) -> dict[str, str]:
    reply = web.request("POST", "/api/v1/auth/token/", body={"email": EMAIL, "password": PASSWORD})
    assert reply.status == 200, reply.body
    return {"Authorization": f"Token {reply.json()['token']}"}


def _timed(call: Callable[[], Reply]) -> tuple[Reply, float]:
    started = time.monotonic()
    reply = call()
    return reply, time.monotonic() - started


def _assert_outage_503(reply: Reply, code: str = "database_unavailable") -> None:
    assert reply.status == 503, reply.body
    assert reply.header("retry-after") == "5"
    body = reply.json()
    assert body["error"]["code"] == code
    assert body["request_id"]


def test_stopping_postgresql_answers_quick_503s_and_the_app_serves_again_once_it_is_back(
    postgres: Postgres, redis: RedisServer, log_dir: Path
):
    """Broke: PostgreSQL, stopped with `pg_ctl stop -m fast` (sessions cut at once) under a running
    gunicorn with persistent connections, then started again.
    Saw: while it was down, requests that need the database got a 503 in the API's error shape
    with Retry-After within seconds (pages a short 503 page), writes were refused the same way,
    /readyz said the database check failed, and the cached article list and detail still answered
    200. Once PostgreSQL was back, the same gunicorn workers served 200s again: no restart, no
    WORKER TIMEOUT.
    Lost: nothing; every article written before the outage is there afterwards.
    """
    with running_web(_env(postgres, redis), log_dir) as web:
        auth = _token_headers(web)
        titles = {f"Written before the outage {n}" for n in range(5)}
        for title in sorted(titles):
            created = web.request("POST", "/api/v1/articles/", body={"title": title}, headers=auth)
            assert created.status == 201, created.body
            slug = created.json()["slug"]
            assert web.request("POST", f"/api/v1/articles/{slug}/publish/", headers=auth).status == 200
        cached_list = web.request("GET", "/api/v1/articles/")
        assert cached_list.status == 200
        cached_detail = web.request("GET", f"/api/v1/articles/{slug}/")
        assert cached_detail.status == 200
        processes = web.processes()

        postgres.stop()

        slowest = 0.0
        # More requests than workers x threads, so every thread meets its dead connection.
        for _ in range(8):
            reply, seconds = _timed(lambda: web.request("GET", "/api/v1/articles/mine/", headers=auth))
            _assert_outage_503(reply)
            slowest = max(slowest, seconds)
        refused_write = web.request("POST", "/api/v1/articles/", body={"title": "During"}, headers=auth)
        _assert_outage_503(refused_write)
        page = web.request("GET", "/articles/", headers={"Accept": "text/html"})
        assert page.status == 503
        assert b"Service unavailable" in page.body
        ready = web.request("GET", "/readyz")
        assert ready.status == 503
        assert ready.json()["checks"]["database"]["ok"] is False
        assert ready.json()["checks"]["cache"]["ok"] is True
        still_cached = web.request("GET", "/api/v1/articles/")
        assert (still_cached.status, still_cached.body) == (200, cached_list.body)
        still_cached_detail = web.request("GET", f"/api/v1/articles/{slug}/")
        assert (still_cached_detail.status, still_cached_detail.body) == (200, cached_detail.body)

        postgres.start()

        wait_until(
            lambda: web.request("GET", "/api/v1/articles/mine/", headers=auth).status == 200,
            timeout=60,
            what="the app to serve again after PostgreSQL restarted",
        )
        for _ in range(8):
            mine = web.request("GET", "/api/v1/articles/mine/", headers=auth)
            assert mine.status == 200, mine.body
        assert {article["title"] for article in mine.json()["results"]} == titles
        assert web.request("GET", "/readyz").status == 200

        log = web.log()
        assert web.processes() == processes, "a gunicorn process was restarted"
        assert "WORKER TIMEOUT" not in log
        assert "database unavailable, answered 503 on /api/v1/articles/mine/" in log
        print(f"slowest 503 while PostgreSQL was stopped: {slowest:.2f} s")


def test_an_unreachable_database_answers_503_after_the_connect_timeout_not_a_hung_worker(
    redis: RedisServer, log_dir: Path
):
    """Broke: the database's address: a server that accepts TCP connections and never answers (a
    hung host, a half-open firewall), so each connection attempt waits for the connect timeout.
    Saw: a 503 in the API's error shape after DATABASE_CONNECT_TIMEOUT, on every request; /readyz
    503 naming the database; no WORKER TIMEOUT, no worker replaced.
    Lost: nothing; no request got far enough to write.
    """
    with silent_server() as port:
        env = {
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/app",
            "DATABASE_CONNECT_TIMEOUT": CONNECT_TIMEOUT,
            "REDIS_URL": redis.url(),
        }
        with running_web(env, log_dir, workers=1) as web:
            processes = web.processes()
            slowest = 0.0
            for _ in range(3):
                reply, seconds = _timed(
                    lambda: web.request("GET", "/api/v1/users/me/", headers={"Authorization": "Token x"})
                )
                _assert_outage_503(reply)
                slowest = max(slowest, seconds)
            ready = web.request("GET", "/readyz")
            assert ready.status == 503
            assert ready.json()["checks"]["database"]["ok"] is False
            assert web.processes() == processes
            assert "WORKER TIMEOUT" not in web.log()
            print(f"slowest 503 with an unreachable database: {slowest:.2f} s")


def test_a_query_cancelled_by_the_statement_timeout_is_a_clean_503_and_the_worker_serves_on(
    postgres: Postgres, redis: RedisServer, log_dir: Path
):
    """Broke: one request's query, which ran past DATABASE_STATEMENT_TIMEOUT_MS (pg_sleep(10) against
    a 1 s limit), so PostgreSQL cancelled it.
    Saw: that request got a 503 in the API's error shape (code query_timeout) after about a second,
    and the error was logged as one line; the same single gunicorn worker answered the next request.
    Lost: nothing; the cancelled statement only read.
    """
    env = _env(
        postgres,
        redis,
        DJANGO_SETTINGS_MODULE="tests.faults.settings",
        DATABASE_STATEMENT_TIMEOUT_MS="1000",
    )
    with running_web(env, log_dir, workers=1) as web:
        auth = _token_headers(web)
        processes = web.processes()
        postgres_log = postgres.cluster.log_size()

        slow = web.request("GET", "/api/v1/test-slow-query/?seconds=10")

        _assert_outage_503(slow, code="query_timeout")
        assert web.request("GET", "/api/v1/articles/mine/", headers=auth).status == 200
        assert web.processes() == processes
        log = web.log()
        assert "query cancelled by the database, answered 503 on /api/v1/test-slow-query/" in log
        assert "WORKER TIMEOUT" not in log
        assert "canceling statement due to statement timeout" in postgres.cluster.log_since(postgres_log)
