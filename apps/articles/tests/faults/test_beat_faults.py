"""Beat's faults on real processes: a beat killed right after it sent, a second beat started by
mistake, and the lock holder killed while another beat stands by.

Each test runs a real `celery worker` and `celery beat` (two beats where it says so) against a
private redis-server and the test database, with a one-second heartbeat and a one-second tick.
Sends are read from the beats' logs ("Sending due task"), runs from the worker's (a run the
guard refused logs "skipping"), and each test prints its figures for the fault report.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from tests.support.processes import ROOT, CeleryProcess, celery_env, manage, start_celery
from tests.support.redis_servers import redis_server
from tests.support.waiting import wait_until
from tests.support.web import Web

# Beats commit to the schedule tables: no test transaction around them, the tables flushed after.
pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PLUGIN = ROOT / "monitoring" / "munin" / "plugins" / "app_"
LOCK_TIMEOUT, LOOP = 4, 1
# The two entries guarded once per interval, sent every ten minutes here: a test is over long before
# a second legitimate run, however slowly a beat starts, so every run after the first is a duplicate.
SLOW = 600
INTERVALS = {
    "core.beat-heartbeat": 1.0,
    "articles.publish-due": float(SLOW),
    "articles.requeue-unnotified": float(SLOW),
    "core.sample-monitoring-gauges": 30.0,
    "core.clear-expired-sessions": 86_400.0,
}
GUARDED = {
    "articles.publish-due": "apps.articles.tasks.publish_due_articles",
    "articles.requeue-unnotified": "apps.articles.tasks.requeue_unnotified_articles",
}
SEND = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*Scheduler: Sending due task (\S+) ", re.M)
TAKE_OVER = "holds the beat lock: sending periodic tasks"
STAND_BY = "stands by and sends nothing"


@pytest.fixture
def redis_port() -> Iterator[int]:
    with redis_server() as private_redis:
        yield private_redis.port


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def beat_tables(django_db_setup: None, django_db_blocker: Any) -> Iterator[Any]:
    """The test database's schedule tables, emptied before and after: beats commit to them."""

    def empty() -> None:
        PeriodicTask.objects.all().delete()
        IntervalSchedule.objects.all().delete()
        CrontabSchedule.objects.all().delete()

    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        pytest.fail("two beats need a database that takes concurrent writers: run on PostgreSQL or MariaDB")
    with django_db_blocker.unblock():
        empty()
    yield django_db_blocker
    with django_db_blocker.unblock():
        empty()


def beat_env(redis_port: int, **extra: str) -> dict[str, str]:
    defaults = {
        "BEAT_HEARTBEAT_INTERVAL": "1",
        "BEAT_HEARTBEAT_MAX_AGE": "10",
        "BEAT_LOCK_TIMEOUT": str(LOCK_TIMEOUT),
        "CELERY_BEAT_MAX_LOOP_INTERVAL": str(LOOP),
        "ARTICLES_PUBLISH_INTERVAL": str(SLOW),
        "ARTICLES_SWEEP_INTERVAL": str(SLOW),
    }
    return celery_env(
        database=dict(settings.DATABASES["default"]), redis_port=redis_port, **(defaults | extra)
    )


def all_due(env: dict[str, str], blocker: Any) -> None:
    """The code schedule in the database with every entry last run a day ago: beat's first tick
    sends them all."""
    synced = manage(env, "sync_beat_schedule")
    assert synced.returncode == 0, synced.stderr
    with blocker.unblock():
        PeriodicTask.objects.update(last_run_at=timezone.now() - timedelta(days=1))


def last_runs(blocker: Any, names: Any) -> dict[str, datetime | None]:
    with blocker.unblock():
        return dict(PeriodicTask.objects.filter(name__in=list(names)).values_list("name", "last_run_at"))


def sends(*beats: CeleryProcess) -> dict[str, list[float]]:
    """Each entry's send times, from the beats' logs."""
    found: dict[str, list[float]] = {}
    for beat in beats:
        for stamp, name in SEND.findall(beat.log()):
            found.setdefault(name, []).append(datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return {name: sorted(times) for name, times in found.items()}


def duplicate_sends(sent: dict[str, list[float]]) -> dict[str, int]:
    """Sends less than half an interval after the entry's previous send."""
    return {
        name: sum(
            1
            for before, after in itertools.pairwise(times)
            if after - before < INTERVALS.get(name, 86_400.0) / 2
        )
        for name, times in sent.items()
    }


def runs(worker: CeleryProcess) -> dict[str, int]:
    """Runs of each guarded entry: its task's successes minus the copies the guard skipped."""
    log = worker.log()
    return {
        entry: len(re.findall(rf"Task {re.escape(task)}\[[^\]]+\] succeeded", log))
        - log.count(f"skipping {task}: ")
        for entry, task in GUARDED.items()
    }


def log_time(process: CeleryProcess, text: str) -> float:
    line = next(line for line in process.log().splitlines() if text in line)
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def started(kind: str, env: dict[str, str], log_dir: Path, *args: str) -> CeleryProcess:
    process = start_celery(kind, env, log_dir, *args)
    process.wait_until_ready()
    return process


@pytest.mark.parametrize("sync_every", ["1", "0"], ids=["saved-on-send", "saved-every-3-minutes"])
def test_beat_killed_right_after_it_sent_runs_nothing_twice_once_restarted(
    redis_port, log_dir, beat_tables, sync_every
):
    """Fault: celery beat killed (SIGKILL) right after its first tick sent every due entry, then
    started again at once; the old lock expires within BEAT_LOCK_TIMEOUT (4 s here) and the new
    beat runs for 10 s more.
    Must hold: no entry guarded once per interval runs twice. Saved on send (the default), the
    restarted beat sends nothing again; saved only every 3 minutes (django-celery-beat's default
    timing, CELERY_BEAT_SYNC_EVERY=0), it sends every entry again and the guard skips each copy.
    """
    env = beat_env(redis_port, CELERY_BEAT_SYNC_EVERY=sync_every)
    all_due(env, beat_tables)
    worker = started("worker", env, log_dir, "--concurrency=1")
    first = started("beat", env, log_dir)
    second = None
    try:
        wait_until(lambda: set(GUARDED) <= set(sends(first)), timeout=60, what="the first tick's sends")
        if sync_every == "1":
            # "Right after it sent": as soon as the database holds the new last run times.
            wait_until(
                lambda: all(
                    at and at > timezone.now() - timedelta(seconds=SLOW)
                    for at in last_runs(beat_tables, GUARDED).values()
                ),
                timeout=10,
                interval=0.02,
                what="the last run times saved",
            )
        first.kill()
        killed_at = time.time()
        second = started("beat", env, log_dir)
        second.wait_for_log(TAKE_OVER, timeout=60)
        took_over = log_time(second, TAKE_OVER) - killed_at
        wait_until(lambda: sends(second).get("core.beat-heartbeat", []) and
                   sends(second)["core.beat-heartbeat"][-1] > log_time(second, TAKE_OVER) + 10,
                   timeout=60, what="10 s of the restarted beat's sends")  # fmt: skip
        # Every copy sent has reached the worker and run or been skipped.
        wait_until(lambda: all(runs(worker)[entry] >= 1 for entry in GUARDED), timeout=30, what="the runs")
        time.sleep(3)
    finally:
        for process in (second, first, worker):
            if process is not None:
                process.stop()
    sent_before, sent_after = sends(first), sends(second)
    sent_all = sends(first, second)
    dup_sends, ran = duplicate_sends(sent_all), runs(worker)
    print(
        f"\n[beat killed after sending, CELERY_BEAT_SYNC_EVERY={sync_every}] new beat sending "
        f"{took_over:.1f}s after the kill"
    )
    for name in INTERVALS:
        print(
            f"  {name}: sent {len(sent_before.get(name, []))} before the kill, "
            f"{len(sent_after.get(name, []))} after; sent again too soon {dup_sends.get(name, 0)}; "
            f"ran {ran.get(name, '-')}"
        )
    assert ran == dict.fromkeys(GUARDED, 1), ran
    if sync_every == "1":
        # Not the heartbeat: a beat reloading a changed schedule can send it twice in a row, which its
        # guard absorbs; the entries that matter are the ones the restart could send again.
        assert not any(count for name, count in dup_sends.items() if name != "core.beat-heartbeat"), dup_sends
    else:
        # The scenario the guard exists for did happen: the restarted beat sent runs again (all but
        # the one django-celery-beat saved on its first send), and the worker skipped them.
        assert sum(dup_sends.get(name, 0) for name in GUARDED) >= 1, dup_sends
        assert worker.log().count("skipping ") >= 1


def munin_beats(web: Web, tmp_path: Path) -> dict[str, str]:
    """<site>_beats through munin-run, with a plugin configuration pointing at this web."""
    munin_run = shutil.which("munin-run") or "/usr/sbin/munin-run"
    if not Path(munin_run).exists():
        pytest.fail("munin-run is not installed: run `make system-deps` (Debian's munin-node)")
    services, conf = tmp_path / "plugins", tmp_path / "plugin-conf.d"
    services.mkdir()
    conf.mkdir()
    (services / "shop_beats").symlink_to(PLUGIN)
    (conf / "shop").write_text(
        f"[shop_*]\nuser root\nenv.METRICS_URL http://127.0.0.1:{web.port}/internal/metrics\n"
    )
    command = [munin_run, "--servicedir", str(services), "--sconfdir", str(conf), "shop_beats"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if line.strip())


def test_a_second_beat_started_by_mistake_stands_by_and_sends_nothing(
    redis_port, log_dir, beat_tables, tmp_path
):
    """Fault: a second celery beat started while one runs, for 15 s.
    Must hold: the second beat logs that it stands by and sends nothing; no guarded run is skipped as
    a duplicate; /readyz's beat check and Munin's <site>_beats (through munin-run) report 1 beat
    sending and 1 standing by. (The heartbeat is not counted: a beat reloading a changed schedule
    can send it twice in a row, which its guard absorbs.)
    """
    # Nothing here waits for the lock to expire: a long lock keeps a holder whose tick stalls on a
    # busy machine from losing it to the second beat.
    env = beat_env(redis_port, BEAT_LOCK_TIMEOUT="30")
    web = Web(env, log_dir, workers=1)
    worker = start_celery("worker", env, log_dir, "--concurrency=1")
    first = start_celery("beat", env, log_dir)
    second = None
    try:
        web.start()
        worker.wait_until_ready()
        first.wait_for_log(TAKE_OVER, timeout=90)
        second = started("beat", env, log_dir)
        second.wait_for_log(STAND_BY, timeout=30)
        window_start = time.time()
        time.sleep(15)
        window = (window_start, time.time())
        readyz = web.request("GET", "/readyz").json()["checks"]["beat"]
        metrics = web.request("GET", "/internal/metrics").json()["beats"]
        munin = munin_beats(web, tmp_path)
    finally:
        for process in (second, first, worker):
            if process is not None:
                process.stop()
        web.stop()
    heartbeats = [at for at in sends(first, second)["core.beat-heartbeat"] if window[0] <= at <= window[1]]
    skipped = sum(worker.log().count(f"skipping {task}:") for task in GUARDED.values())
    print(
        f"\n[second beat] heartbeats sent in {window[1] - window[0]:.0f}s: {len(heartbeats)} "
        f"(first beat {len(sends(first).get('core.beat-heartbeat', []))} in all, second beat "
        f"{sum(len(times) for times in sends(second).values())}); copies skipped {skipped}; "
        f"/readyz beat: {readyz['detail']!r}; /internal/metrics beats: {metrics}; "
        f"munin-run app_beats: {munin}"
    )
    assert sends(second) == {}
    assert skipped == 0
    assert readyz["ok"] is True, readyz
    assert "1 beat(s) sending, 1 standing by" in readyz["detail"], readyz
    assert metrics == {"sending": 1, "standby": 1}
    assert (munin["sending.value"], munin["standby.value"]) == ("1", "1")


def test_a_standby_beat_takes_over_once_the_killed_holders_lock_expires(redis_port, log_dir, beat_tables):
    """Fault: the beat holding the lock killed (SIGKILL) while a second beat stands by.
    Must hold: the standby starts sending once the dead beat's lock expired, within
    BEAT_LOCK_TIMEOUT plus one tick (4 s + 1 s here) of the kill, not before; the entries the dead
    beat sent are not sent again, and nothing guarded runs twice.
    """
    env = beat_env(redis_port)
    all_due(env, beat_tables)
    lock = redis.Redis(port=redis_port, db=0)
    lock_key = "celery-test:1:beat:lock"  # celery_env's CACHE_KEY_PREFIX, as django-redis names it
    worker = started("worker", env, log_dir, "--concurrency=1")
    holder = started("beat", env, log_dir)
    standby = None
    try:
        holder.wait_for_log(TAKE_OVER, timeout=30)
        standby = started("beat", env, log_dir)
        standby.wait_for_log(STAND_BY, timeout=30)
        wait_until(lambda: set(GUARDED) <= set(sends(holder)), timeout=30, what="the holder's first sends")
        time.sleep(2)
        holder_token = lock.get(lock_key)
        os.killpg(holder.process.pid, signal.SIGKILL)
        killed_at = time.time()
        expires_at = killed_at + int(lock.pttl(lock_key)) / 1000
        holder.process.wait(timeout=5)
        standby.wait_for_log(TAKE_OVER, timeout=LOCK_TIMEOUT + LOOP + 30)
        took_over_at = log_time(standby, TAKE_OVER)
        wait_until(
            lambda: len(sends(standby).get("core.beat-heartbeat", [])) >= 5, timeout=30, what="heartbeats"
        )
        time.sleep(3)
    finally:
        for process in (standby, holder, worker):
            if process is not None:
                process.stop()
    last_by_holder = sends(holder)["core.beat-heartbeat"][-1]
    first_by_standby = sends(standby)["core.beat-heartbeat"][0]
    ran = runs(worker)
    print(
        f"\n[lock holder killed] lock {holder_token!r} expired {expires_at - killed_at:.1f}s after the kill; "
        f"standby sending {took_over_at - killed_at:.1f}s after it (bound {LOCK_TIMEOUT + LOOP}s); "
        f"no heartbeat sent for {first_by_standby - last_by_holder:.1f}s; guarded runs {ran}; "
        f"the standby sent {dict(Counter({name: len(times) for name, times in sends(standby).items()}))}"
    )
    # The log's millisecond stamps against this process's clock: a tick's worth of leeway.
    assert took_over_at >= expires_at - LOOP
    # The standby sends again only what fell due since (the 30-second gauges on a slow start). The
    # heartbeat is left out: a beat that reloads a changed schedule can send it twice in a row (seen:
    # 2 ms apart, from the holder), which its guard absorbs and which is not what this test is about.
    assert not set(GUARDED) & set(sends(standby)), sends(standby)
    early = duplicate_sends(sends(holder, standby))
    assert not any(count for name, count in early.items() if name != "core.beat-heartbeat"), early
    assert ran == dict.fromkeys(GUARDED, 1), ran
