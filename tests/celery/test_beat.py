"""Real beat and worker: the code schedule is synced on start, entries fire on schedule, and
/readyz notices when beat stops."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from django.conf import settings
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from tests.support.postgres import postgres_cluster
from tests.support.processes import CeleryProcess, celery, celery_env, manage, start_celery
from tests.support.redis_servers import redis_server
from tests.support.waiting import wait_until

# Beat at a one-second heartbeat; four seconds without one is stale.
INTERVAL, MAX_AGE = 1, 4
KEY_PREFIX = "celery-test"  # celery_env's CACHE_KEY_PREFIX
HEARTBEAT_KEY = f"{KEY_PREFIX}:1:beat:heartbeat"  # how django-redis names the cache key

# All marked alike: pytest-django runs database tests first, and the last test here stops beat.
# Transactional: on SQLite an open test transaction holds the write lock beat needs to save its runs.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def env(database, redis_port) -> dict[str, str]:
    return celery_env(
        database=database,
        redis_port=redis_port,
        BEAT_HEARTBEAT_INTERVAL=str(INTERVAL),
        BEAT_HEARTBEAT_MAX_AGE=str(MAX_AGE),
    )


@pytest.fixture(scope="module")
def worker_and_beat(env, log_dir, django_db_blocker) -> Iterator[tuple[CeleryProcess, CeleryProcess]]:
    worker = start_celery("worker", env, log_dir, "--concurrency=1")
    beat = start_celery("beat", env, log_dir)
    try:
        worker.wait_until_ready()
        # Until its first send, beat is still loading the schedule from the tables that each test's
        # teardown empties: on SQLite it read an entry whose interval was gone and crashed, or read
        # none and never sent. Once loaded, it keeps the schedule in memory.
        beat.wait_for_log("Sending due task core.beat-heartbeat", timeout=90)
        yield worker, beat
    finally:
        beat.stop()
        worker.stop()
        # Beat committed these rows outside any test transaction.
        with django_db_blocker.unblock():
            PeriodicTask.objects.all().delete()
            IntervalSchedule.objects.all().delete()
            CrontabSchedule.objects.all().delete()


@pytest.fixture
def beat(worker_and_beat) -> CeleryProcess:
    return worker_and_beat[1]


@pytest.fixture
def heartbeats(redis_port) -> redis.Redis:
    return redis.Redis(port=redis_port, db=0)


def test_beat_syncs_the_code_schedule_into_the_database_when_it_starts(beat):
    beat.wait_for_log("beat schedule synced from code", timeout=10)
    entries = {task.name: task for task in PeriodicTask.objects.all()}
    assert {"core.beat-heartbeat", "core.clear-expired-sessions"} <= set(entries)
    assert entries["core.beat-heartbeat"].interval.every == INTERVAL
    assert all(
        task.enabled and "[code-schedule:" in task.description
        for task in entries.values()
        if task.name.startswith("core.")
    )


def test_the_heartbeat_entry_fires_every_interval(beat, heartbeats):
    first = int(wait_until(lambda: heartbeats.get(HEARTBEAT_KEY), timeout=30, what="a first heartbeat"))
    later = int(
        wait_until(
            lambda: int(heartbeats.get(HEARTBEAT_KEY) or 0) > first and heartbeats.get(HEARTBEAT_KEY),
            timeout=15,
            what="the heartbeat to advance",
        )
    )
    assert 1 <= later - first <= 10


@contextmanager
def _on_private_postgres(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """`env` pointed at a private PostgreSQL cluster, migrated, and a Redis of its own."""
    with postgres_cluster() as cluster, redis_server() as private_redis:
        with cluster.cluster.connect() as connection:
            connection.execute("CREATE DATABASE app")
        private = {
            **env,
            "DATABASE_URL": cluster.url("app"),
            "REDIS_URL": f"redis://127.0.0.1:{private_redis.port}",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{private_redis.port}/1",
        }
        migrated = manage(private, "migrate", "--no-input", timeout=300)
        assert migrated.returncode == 0, migrated.stderr
        yield private


def _second_beat_stands_by(env: dict[str, str], log_dir) -> None:
    with celery("beat", env, log_dir) as second:
        second.wait_for_log("stands by and sends nothing", timeout=30)
    # Only the second beat's own log tells what it sent: the worker's guard also skips the copy a
    # first beat sent as it started (seen once in 8 runs), which is not what this test is about.
    assert "Sending due task" not in second.log()


def test_a_second_beat_started_by_mistake_stands_by_and_sends_nothing(request, env, log_dir):
    if not settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        request.getfixturevalue("worker_and_beat")
        _second_beat_stands_by(env, log_dir)
        return
    # SQLite admits one writer at a time and both beats write their schedule state to it. Two beats
    # is a production mistake, and
    # production runs PostgreSQL or MariaDB: on a SQLite run this scenario runs on a private
    # PostgreSQL cluster, with a worker and a first beat of its own, instead of being skipped.
    with (
        _on_private_postgres(env) as private,
        celery("worker", private, log_dir, "--concurrency=1"),
        celery("beat", private, log_dir),
    ):
        _second_beat_stands_by(private, log_dir)


@pytest.mark.faults
def test_readyz_reports_beat_stale_once_beat_has_stopped(beat, redis_port, client, settings):
    """Broke: celery beat, stopped.
    Saw: /readyz still 200 (status "degraded", beat stale), so the web stays in the load balancer.
    Lost: nothing queued; periodic work waits until beat runs again (supervisor restarts it).
    """
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.BEAT_HEARTBEAT_MAX_AGE = MAX_AGE
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{redis_port}/1"
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{redis_port}/0",
            "KEY_PREFIX": KEY_PREFIX,
        }
    }

    def beat_check() -> dict:
        response = client.get(reverse("readyz"))
        assert response.status_code == 200, response.content
        return response.json()

    fresh = wait_until(
        lambda: beat_check()["checks"]["beat"]["ok"] and beat_check(), timeout=15, what="beat ok"
    )
    # This Redis keeps nothing on disk, so the advisory broker_durability check may be the one down.
    assert [name for name, check in fresh["checks"].items() if not check["ok"]] in ([], ["broker_durability"])

    beat.stop()
    stale = wait_until(
        lambda: (body := beat_check())["checks"]["beat"]["ok"] is False and body,
        timeout=MAX_AGE + 10,
        what="/readyz to call beat stale",
    )
    # Beat is reported, but a stopped beat does not take the web instance out of the load balancer.
    assert stale["status"] == "degraded"
    assert "stale: last heartbeat" in stale["checks"]["beat"]["detail"]
