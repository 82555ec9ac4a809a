"""Tasks never lost: a database outage longer than the old retry budget, a task that fails for good,
a worker whose main process is killed, and a worker killed between sending an email and recording it.

Every test runs a real `celery worker` against a private redis-server (broker, cache and the tests'
effects); the outage tests also run a private PostgreSQL cluster, stopped and started with pg_ctl.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_py
from django.conf import settings
from django.urls import reverse

from apps.core.models import DeadLetter
from tests.celery.tasks import record_effect
from tests.faults.tasks import DEPENDENCY_DOWN, call_flaky_dependency, write_probe_row
from tests.support.postgres import Postgres, postgres_cluster
from tests.support.processes import CeleryProcess, celery, celery_env, manage, publishing_to
from tests.support.redis_servers import RedisServer, redis_server
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults]

WORKER_ARGS = ("--concurrency=2", "--include=tests.faults.tasks,tests.celery.tasks")
# Tasks trickle in during an outage at this rate, as requests would queue them.
SEND_INTERVAL = 0.5


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="module")
def postgres(redis: RedisServer) -> Iterator[Postgres]:
    """A private cluster with the dead-letter table and the probe's table."""
    with postgres_cluster() as cluster:
        with cluster.cluster.connect() as connection:
            connection.execute("CREATE DATABASE app")
        result = manage(_env(redis, cluster), "migrate", "core", "--no-input")
        assert result.returncode == 0, result.stderr
        with cluster.cluster.connect("app") as connection:
            connection.execute("CREATE TABLE fault_probe (key text PRIMARY KEY, runs integer NOT NULL)")
        yield cluster


def _env(redis: RedisServer, postgres: Postgres | None = None, **extra: str) -> dict[str, str]:
    env = celery_env(
        database=settings.DATABASES["default"],
        redis_port=redis.port,
        CACHE_KEY_PREFIX=f"task-faults-{redis.port}",
        **extra,
    )
    if postgres is not None:
        env.update(DATABASE_URL=postgres.url("app"), DATABASE_CONNECT_TIMEOUT="2")
    return env


def _probe_runs(postgres: Postgres) -> dict[str, int]:
    with postgres.cluster.connect("app") as connection:
        return dict(connection.execute("SELECT key, runs FROM fault_probe").fetchall())


def _dead_letters(postgres: Postgres) -> list[tuple[str, int]]:
    with postgres.cluster.connect("app") as connection:
        rows = connection.execute("SELECT task_id, attempts FROM core_deadletter").fetchall()
    return [(str(task_id), int(attempts)) for task_id, attempts in rows]


def _send_probes(prefix: str, count: int) -> list[str]:
    keys = []
    for number in range(count):
        key = f"{prefix}-{number}"
        write_probe_row.delay(key)
        keys.append(key)
        time.sleep(SEND_INTERVAL)
    return keys


def effects_store(redis: RedisServer) -> redis_py.Redis:
    """Where the tasks of tests/faults/tasks.py and tests/celery/tasks.py record what they did."""
    return redis_py.Redis.from_url(redis.url(2))


def _counts(store: redis_py.Redis, keys: list[str], name: str) -> list[int]:
    return [int(value or 0) for value in store.mget([f"{key}:{name}" for key in keys])]


def _report(**figures: object) -> None:
    print("figures: " + ", ".join(f"{name}={value}" for name, value in figures.items()))


def test_tasks_queued_during_a_75_second_database_outage_all_run_once_it_is_back(
    postgres: Postgres, redis: RedisServer, log_dir: Path
):
    """Broke: PostgreSQL, stopped (pg_ctl -m fast) for 75 s, longer than the 0-31 s that five
    jittered retries used to add up to, while probe tasks (one row per run) trickled in at 2/s.
    The worker retries for TASK_RETRY_WINDOW=150 s (the default is 900 s), backing off up to 8 s.
    Saw: the probes failed with OperationalError and were retried; once PostgreSQL was back every
    one ran.
    Lost: nothing: sent = run, lost 0, run twice 0, no dead letter.
    """
    env = _env(redis, postgres, TASK_RETRY_WINDOW="150", TASK_RETRY_BACKOFF_MAX="8")
    with celery("worker", env, log_dir, *WORKER_ARGS) as worker, publishing_to(redis.url(1)):
        sent = _send_probes("before", 4)
        wait_until(lambda: len(_probe_runs(postgres)) == len(sent), timeout=30, what="the first probes")

        postgres.stop()
        stopped = time.monotonic()
        outage_seconds = 75
        sent += _send_probes("during", int(outage_seconds / SEND_INTERVAL))
        postgres.start()
        restarted = time.monotonic()
        sent += _send_probes("after", 4)

        wait_until(
            lambda: len(_probe_runs(postgres)) == len(sent),
            timeout=120,
            interval=0.5,
            what="every probe to run once PostgreSQL is back",
        )
        healed = time.monotonic() - restarted
        runs = _probe_runs(postgres)
        log = worker.log()
    twice = sorted(key for key, count in runs.items() if count > 1)
    _report(
        outage_s=round(restarted - stopped, 1),
        sent=len(sent),
        run=len(runs),
        lost=len(set(sent) - set(runs)),
        run_twice=len(twice),
        heal_s=round(healed, 1),
    )
    assert set(runs) == set(sent)
    assert twice == []
    assert _dead_letters(postgres) == []
    assert "OperationalError" in log
    assert "Retry in" in log
    assert "raised unexpected" not in log


def test_a_task_whose_window_ends_while_the_database_is_still_down_is_kept_and_runs_once_it_is_back(
    postgres: Postgres, redis: RedisServer, log_dir: Path
):
    """Broke: PostgreSQL, stopped for 30 s under a worker whose retry window is only 8 s, so the
    probes' window ended while the dead-letter table itself could not be written.
    Saw: each such failure logged at ERROR with the task's full payload ("could not record dead
    letter ..."), and the task kept in the broker, retried at TASK_RETRY_BACKOFF_MAX.
    Lost: nothing: once PostgreSQL was back each probe ran, once, and needed no dead letter.
    """
    before = _probe_runs(postgres)
    env = _env(redis, postgres, TASK_RETRY_WINDOW="8", TASK_RETRY_BACKOFF_MAX="4")
    with celery("worker", env, log_dir, *WORKER_ARGS) as worker, publishing_to(redis.url(1)):
        postgres.stop()
        sent = _send_probes("window-spent", 6)
        worker.wait_for_log("could not record dead letter for task tests.faults.tasks.write_probe_row", 60)
        time.sleep(max(0.0, 30 - SEND_INTERVAL * len(sent)))
        postgres.start()
        restarted = time.monotonic()
        wait_until(
            lambda: set(sent) <= set(_probe_runs(postgres)),
            timeout=60,
            interval=0.5,
            what="the probes kept in the broker to run",
        )
        healed = time.monotonic() - restarted
        log = worker.log()
    runs = {key: count for key, count in _probe_runs(postgres).items() if key not in before}
    _report(sent=len(sent), run=len(runs), lost=len(set(sent) - set(runs)), heal_s=round(healed, 1))
    assert runs == dict.fromkeys(sent, 1)
    assert _dead_letters(postgres) == []
    unrecorded = [line for line in log.splitlines() if "could not record dead letter" in line]
    # The whole payload, so that nothing exists only in the broker: the task, its arguments, the error.
    # (the error follows as the traceback, on the lines after)
    assert any("args=['window-spent-0'] kwargs={} attempts=" in line for line in unrecorded), unrecorded


@pytest.mark.django_db(transaction=True)
def test_a_task_that_fails_past_its_window_becomes_a_dead_letter_and_the_admin_runs_it_again(
    redis: RedisServer, log_dir: Path, admin_client
):
    """Broke: a task's dependency (a transient ConnectionError) for longer than the worker's retry
    window (TASK_RETRY_WINDOW=6 s here).
    Saw: each task retried for the window, then recorded as a dead letter (task, arguments,
    error, attempts) in the admin; the error logged at ERROR and counted. With the dependency back,
    the admin's "Run the selected tasks again" queued them and the worker ran each once.
    Lost: nothing: every task that failed for good was a dead letter until it was run again.
    """
    store = effects_store(redis)
    store.set(DEPENDENCY_DOWN, 1)
    env = _env(redis, TASK_RETRY_WINDOW="6", TASK_RETRY_BACKOFF_MAX="2")
    keys = [f"flaky-{number}" for number in range(3)]
    with celery("worker", env, log_dir, *WORKER_ARGS) as worker, publishing_to(redis.url(1)):
        for key in keys:
            call_flaky_dependency.delay(key)
        wait_until(lambda: DeadLetter.objects.count() == len(keys), timeout=60, what="three dead letters")
        dead_letters = list(DeadLetter.objects.order_by("task_id"))
        assert sorted(letter.args[0] for letter in dead_letters) == keys
        for letter in dead_letters:
            assert letter.task_name == "tests.faults.tasks.call_flaky_dependency"
            assert letter.attempts > 1
            assert letter.attempts == int(store.get(f"{letter.args[0]}:attempts") or 0)
            assert "ConnectionError: the dependency is down" in letter.error
            assert letter.rerun_at is None
        assert not any(store.get(f"{key}:runs") for key in keys)
        assert "failed for good after" in worker.log()

        listed = admin_client.get(reverse("admin:core_deadletter_changelist"))
        assert listed.status_code == 200
        assert b"the dependency is down" in listed.content

        store.delete(DEPENDENCY_DOWN)
        ran_again = admin_client.post(
            reverse("admin:core_deadletter_changelist"),
            {"action": "run_again", "_selected_action": [letter.pk for letter in dead_letters]},
            follow=True,
        )
        assert ran_again.status_code == 200
        assert b"Queued 3 task(s) again." in ran_again.content
        wait_until(lambda: all(store.get(f"{key}:runs") for key in keys), timeout=30, what="the re-run tasks")
    runs = {key: int(store.get(f"{key}:runs") or 0) for key in keys}
    _report(sent=len(keys), dead_lettered=len(dead_letters), rerun=sum(runs.values()), lost=0)
    assert runs == dict.fromkeys(keys, 1)
    assert DeadLetter.objects.filter(rerun_at__isnull=False, rerun_task_id__gt="").count() == len(keys)


def test_tasks_held_by_a_worker_killed_outright_run_again_within_the_visibility_timeout(
    redis: RedisServer, log_dir: Path
):
    """Broke: a worker, main process and pool together, killed with SIGKILL (the OOM killer, a host
    crash) while it held tasks part done, beside a second worker that kept consuming. The broker's
    visibility timeout is 20 s here (CELERY_VISIBILITY_TIMEOUT; by default the longest countdown
    plus the hard time limit plus 60 s, instead of the hour it was).
    Saw: the second worker ran the rest of the queue and, once the visibility timeout had passed,
    the tasks the dead worker held.
    Lost: nothing: sent = run. Run twice: only the tasks the dead worker had started; the probe
    (record_effect) is idempotent, so each effect was applied once.
    """
    store = effects_store(redis)
    broker = redis_py.Redis.from_url(redis.url(1))
    env = _env(
        redis,
        CELERY_VISIBILITY_TIMEOUT="20",
        CELERY_TASK_TIME_LIMIT="10",
        CELERY_TASK_SOFT_TIME_LIMIT="8",
        TASK_RETRY_BACKOFF_MAX="5",
    )
    keys = [f"held-{number}" for number in range(80)]

    def started_by(worker: CeleryProcess) -> set[str]:
        return set(re.findall(r"recording effect (held-\d+)", worker.log()))

    def unfinished(started: set[str]) -> set[str]:
        return {key for key in started if not int(store.get(f"{key}:completed") or 0)}

    with celery("worker", env, log_dir, *WORKER_ARGS) as doomed, celery("worker", env, log_dir, *WORKER_ARGS):
        with publishing_to(redis.url(1)):
            for key in keys:
                record_effect.delay(key, 1.0)
        # Kill it inside a task it started, not between two: on a busy machine the other worker can
        # take the first tasks while this one is still idle.
        wait_until(
            lambda: unfinished(started_by(doomed)), timeout=60, interval=0.05, what="the worker mid-task"
        )
        doomed.kill()
        killed = time.monotonic()
        held = broker.hlen("unacked")
        cut_short = unfinished(started_by(doomed))
        wait_until(
            lambda: all(_counts(store, keys, "completed")),
            timeout=120,
            interval=0.5,
            what="every task to run",
        )
        healed = time.monotonic() - killed
    attempts = _counts(store, keys, "attempts")
    applied = _counts(store, keys, "applied")
    _report(
        sent=len(keys),
        run=sum(1 for count in _counts(store, keys, "completed") if count),
        lost=sum(1 for count in _counts(store, keys, "completed") if not count),
        held_when_killed=held,
        cut_short=len(cut_short),
        run_twice=sum(1 for count in attempts if count > 1),
        heal_s=round(healed, 1),
    )
    assert cut_short, "the worker finished its task before the kill landed: nothing broke"
    assert applied == [1] * len(keys)
    assert all(int(store.get(f"{key}:attempts") or 0) > 1 for key in cut_short)
