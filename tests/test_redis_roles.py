"""Redis roles: cache, sessions and broker each on the Redis its variable names (an app's own role, such
as autocomplete, is tested with the app).

The app runs in a fresh process with the role variables set and REDIS_URL pointing at a closed
port, so anything that fell back to REDIS_URL would fail; private redis-servers then show
where each key landed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
import redis
from django.conf import settings

from apps.users.tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.support.net import closed_port
from tests.support.processes import database_url, manage, settings_in_a_fresh_process
from tests.support.redis_servers import redis_sentinel, redis_server
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent


def this_runs_database_url() -> str:
    """A URL for the database this test run uses, for a process the test starts."""
    return database_url(settings.DATABASES["default"])


def run_app(code: str, **env: str) -> str:
    base = {
        "PATH": os.environ["PATH"],
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "REDIS_URL": f"redis://127.0.0.1:{closed_port()}",
    }
    result = manage({**base, **env}, "shell", "--no-imports", "-c", code)
    assert result.returncode == 0, result.stderr
    return result.stdout


def keys(port: int, db: int) -> list[str]:
    return sorted(key.decode() for key in redis.Redis(port=port, db=db).keys("*"))


@pytest.fixture(scope="module")
def cache_redis() -> Iterator[int]:
    with redis_server() as private_redis:
        yield private_redis.port


@pytest.fixture(scope="module")
def sessions_redis() -> Iterator[int]:
    with redis_server() as private_redis:
        yield private_redis.port


def test_every_role_defaults_to_its_own_database_of_redis_url():
    roles = settings_in_a_fresh_process(
        "[settings.CACHES['default']['LOCATION'], settings.SESSION_CACHE_ALIAS, settings.CELERY_BROKER_URL]",
        REDIS_URL="redis://redis.internal:6379",
    )
    assert roles == [
        "redis://redis.internal:6379/0",
        "default",
        "redis://redis.internal:6379/1",
    ]


@pytest.mark.django_db(transaction=True)
def test_cache_sessions_and_broker_each_land_on_their_own_redis(cache_redis, sessions_redis):
    UserFactory(email="split@example.com")
    code = (
        "from django.conf import settings; from django.test import Client;"
        "from config.celery import app;"
        "response = Client().post('/api/v1/auth/login/',"
        f" {{'email': 'split@example.com', 'password': '{DEFAULT_PASSWORD}'}},"
        " content_type='application/json');"
        "print(response.status_code);"
        "app.send_task('tests.redis_roles_probe')"
    )
    output = run_app(
        code,
        DATABASE_URL=this_runs_database_url(),
        CACHE_KEY_PREFIX="split",
        CACHE_REDIS_URL=f"redis://127.0.0.1:{cache_redis}/0",
        SESSION_REDIS_URL=f"redis://127.0.0.1:{sessions_redis}/0",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{sessions_redis}/1",
        CELERY_TASK_ALWAYS_EAGER="false",
    )

    assert output.split() == ["200"]
    # The login throttle counts in the cache; the session is stored in the sessions' Redis.
    cache_keys, session_keys = keys(cache_redis, 0), keys(sessions_redis, 0)
    assert any(key.startswith("split:1:throttle_login") for key in cache_keys), cache_keys
    assert not any("sessions" in key for key in cache_keys), cache_keys
    assert any(key.startswith("split:1:django.contrib.sessions.cached_db") for key in session_keys)
    assert not any("throttle" in key for key in session_keys), session_keys
    assert keys(sessions_redis, 1) != []
    assert keys(cache_redis, 1) == []


def test_the_cache_reaches_the_primary_that_sentinel_names():
    with redis_server() as primary_server, redis_sentinel("app-cache", primary_server.port) as sentinel:
        output = run_app(
            "from django.core.cache import cache; cache.set('probe', 'via sentinel', 60);"
            "print(cache.get('probe'))",
            DATABASE_URL="sqlite:///:memory:",
            CACHE_KEY_PREFIX="sentinel",
            CACHE_REDIS_SENTINELS=f"127.0.0.1:{sentinel}",
            CACHE_REDIS_SENTINEL_MASTER="app-cache",
        )
        assert output.strip() == "via sentinel"
        assert keys(primary_server.port, 0) == ["sentinel:1:probe"]


def test_when_the_primary_dies_the_cache_follows_sentinel_to_the_promoted_replica(settings):
    from django.core.cache import caches

    from config.settings.base import sentinel_cache

    with (
        redis_server() as first_server,
        redis_server("--replicaof", "127.0.0.1", str(first_server.port)) as second_server,
        redis_sentinel("app-cache", first_server.port) as sentinel_port,
    ):
        sentinel = redis.Redis(port=sentinel_port, decode_responses=True)
        wait_until(
            lambda: len(sentinel.sentinel_slaves("app-cache")) == 1, 30, what="sentinel to see the replica"
        )
        settings.CACHES = {
            **settings.CACHES,
            "ha": sentinel_cache([f"127.0.0.1:{sentinel_port}"], "app-cache"),
        }
        cache = caches["ha"]
        cache.set("before", "on the first primary")
        assert keys(first_server.port, 0) == [cache.make_key("before")]

        # The primary dies; Sentinel notices within down-after-milliseconds and promotes the replica.
        with suppress(redis.ConnectionError):
            redis.Redis(port=first_server.port).shutdown(nosave=True)
        wait_until(
            lambda: sentinel.sentinel_get_master_addr_by_name("app-cache")[1] == second_server.port,
            30,
            what="sentinel to promote the replica",
        )

        # Writes on the dead connection fail (swallowed as misses); the client then asks Sentinel
        # again and reaches the new primary, with no restart and no configuration change.
        new_primary = redis.Redis(port=second_server.port)

        def write_reached_the_new_primary() -> bool:
            cache.set("after", "moved")
            return bool(new_primary.exists(cache.make_key("after")))

        wait_until(write_reached_the_new_primary, 30, what="a write to reach the new primary")
        assert cache.get("after") == "moved"
        assert "master" in str(new_primary.role())
