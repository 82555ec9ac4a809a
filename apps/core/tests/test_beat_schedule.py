"""The beat schedule in code, synced into django-celery-beat's tables; the guard that runs each
periodic copy once per interval, and the count of beats."""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from io import StringIO

import pytest
from celery.schedules import crontab
from django.core.management import call_command
from django.db import IntegrityError
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from apps.core.tasks.beat import sync_beat_schedule
from apps.core.tasks.periodic import BeatCount, beats_running, claim_slot, forget_beat, record_beat

pytestmark = pytest.mark.django_db

HEARTBEAT = {"task": "apps.core.tasks.beat_heartbeat", "schedule": 60.0}
NIGHTLY = {"task": "apps.core.tasks.clear_expired_sessions", "schedule": crontab(hour=3, minute=17)}


def sync(settings, schedule: dict) -> str:
    settings.CELERY_BEAT_SCHEDULE = schedule
    out = StringIO()
    call_command("sync_beat_schedule", stdout=out)
    return out.getvalue()


def test_code_entries_are_added_enabled_and_tagged_as_managed_by_code(settings):
    sync(settings, {"heartbeat": HEARTBEAT, "nightly": NIGHTLY})
    heartbeat = PeriodicTask.objects.get(name="heartbeat")
    assert heartbeat.enabled
    assert heartbeat.task == "apps.core.tasks.beat_heartbeat"
    assert heartbeat.interval.every == 60
    assert heartbeat.interval.period == IntervalSchedule.SECONDS
    assert "[code-schedule:" in heartbeat.description
    nightly = PeriodicTask.objects.get(name="nightly")
    assert (nightly.crontab.hour, nightly.crontab.minute) == ("3", "17")


def test_syncing_twice_changes_nothing(settings):
    sync(settings, {"heartbeat": HEARTBEAT})
    output = sync(settings, {"heartbeat": HEARTBEAT})
    assert "added 0; updated 0; disabled 0; unchanged 1" in output
    assert PeriodicTask.objects.filter(name="heartbeat").count() == 1


def test_an_entry_removed_from_code_is_disabled_after_the_next_sync(settings):
    sync(settings, {"heartbeat": HEARTBEAT, "nightly": NIGHTLY})
    output = sync(settings, {"heartbeat": HEARTBEAT})
    assert "disabled: nightly" in output
    assert PeriodicTask.objects.get(name="nightly").enabled is False
    assert PeriodicTask.objects.get(name="heartbeat").enabled is True


def test_an_entry_back_in_code_is_enabled_again(settings):
    sync(settings, {"nightly": NIGHTLY})
    sync(settings, {})
    sync(settings, {"nightly": NIGHTLY})
    assert PeriodicTask.objects.get(name="nightly").enabled is True


def test_entries_an_operator_created_in_the_admin_are_never_touched(settings):
    every_minute = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.create(name="operator's report", task="reports.send", interval=every_minute)
    sync(settings, {"heartbeat": HEARTBEAT})
    sync(settings, {})
    operator_entry = PeriodicTask.objects.get(name="operator's report")
    assert operator_entry.enabled is True
    assert operator_entry.description == ""


def test_a_pause_in_the_admin_survives_a_sync(settings):
    sync(settings, {"heartbeat": HEARTBEAT})
    PeriodicTask.objects.filter(name="heartbeat").update(enabled=False)
    sync(settings, {"heartbeat": HEARTBEAT})
    assert PeriodicTask.objects.get(name="heartbeat").enabled is False


def test_a_retiming_in_the_admin_lasts_until_the_code_changes_the_entry(settings):
    sync(settings, {"heartbeat": HEARTBEAT})
    every_five = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.filter(name="heartbeat").update(interval=every_five)
    sync(settings, {"heartbeat": HEARTBEAT})
    assert PeriodicTask.objects.get(name="heartbeat").interval.every == 5
    sync(settings, {"heartbeat": {**HEARTBEAT, "schedule": timedelta(seconds=30)}})
    retimed = PeriodicTask.objects.get(name="heartbeat")
    assert (retimed.interval.every, retimed.interval.period) == (30, IntervalSchedule.SECONDS)


def test_the_shipped_schedule_cleans_sessions_daily_and_beats_every_interval(settings):
    report = sync_beat_schedule(settings.CELERY_BEAT_SCHEDULE)
    assert {"core.beat-heartbeat", "core.clear-expired-sessions"} <= set(report.added)
    heartbeat = PeriodicTask.objects.get(name="core.beat-heartbeat")
    assert heartbeat.interval.every == settings.BEAT_HEARTBEAT_INTERVAL
    sessions = PeriodicTask.objects.get(name="core.clear-expired-sessions")
    assert sessions.crontab.day_of_week == "*"
    assert sessions.crontab.hour != "*"


@pytest.mark.django_db
def test_a_sync_that_loses_an_insert_race_to_another_beat_syncs_again(monkeypatch):
    from apps.core.tasks import beat

    schedule = {"demo.every-minute": {"task": "apps.core.tasks.beat_heartbeat", "schedule": 60.0}}
    real_sync = beat._sync_beat_schedule
    calls = []

    def other_beat_wins_first(entries):
        calls.append(1)
        if len(calls) == 1:
            real_sync(entries)  # the other beat's insert commits first...
            raise IntegrityError("duplicate key value violates unique constraint")  # ...ours fails
        return real_sync(entries)

    monkeypatch.setattr(beat, "_sync_beat_schedule", other_beat_wins_first)
    report = beat.sync_beat_schedule(schedule)
    assert len(calls) == 2
    assert report.unchanged == ["demo.every-minute"]
    assert PeriodicTask.objects.filter(name="demo.every-minute").count() == 1


# --- The once-per-interval guard and beat's roll call (real Redis, through the cache) ----------


def _name() -> str:
    return f"test-entry-{uuid.uuid4().hex[:8]}"


def test_a_copy_published_seconds_after_a_run_is_a_duplicate_even_across_a_minute_boundary():
    name, end_of_minute = _name(), 1_800_000_059.0
    assert claim_slot(name, seconds=60, at=end_of_minute) is True
    # Published 3 s later, in the next minute: the restarted beat's copy of the same run.
    assert claim_slot(name, seconds=60, at=end_of_minute + 3) is False
    assert claim_slot(name, seconds=60, at=end_of_minute + 60) is True


def test_a_retry_or_redelivery_of_the_claimed_copy_runs_again():
    name, at = _name(), 1_800_000_000.0
    assert claim_slot(name, seconds=60, at=at, copy="message-1") is True
    # The same message (a retry keeps its id and publication time) is not a second beat's copy.
    assert claim_slot(name, seconds=60, at=at, copy="message-1") is True
    assert claim_slot(name, seconds=60, at=at + 1, copy="message-2") is False


def test_an_older_copy_run_after_a_newer_one_is_a_duplicate():
    name, at = _name(), 1_800_000_000.0
    assert claim_slot(name, seconds=60, at=at) is True
    assert claim_slot(name, seconds=60, at=at - 5) is False


@pytest.mark.parametrize("phase", [1.0, 29.0, 30.0, 31.0, 59.0])
def test_two_beats_of_any_phase_run_an_entry_once_per_interval(phase):
    name, start, intervals = _name(), 1_800_000_000.0, 10
    copies = sorted(
        [start + 60 * n for n in range(intervals)] + [start + 60 * n + phase for n in range(intervals)]
    )
    runs = sum(claim_slot(name, seconds=60, at=at) for at in copies)
    # The first interval may run both beats' copies when they are more than half an interval apart.
    assert intervals <= runs <= intervals + 1


def test_copies_claimed_at_the_same_moment_by_two_workers_run_once():
    name, at = _name(), time.time()
    with ThreadPoolExecutor(max_workers=8) as pool:
        claims = list(pool.map(lambda _: claim_slot(name, seconds=60, at=at), range(8)))
    assert claims.count(True) == 1


def test_beats_are_counted_by_role_and_a_role_change_counts_once():
    before = beats_running()
    assert before is not None
    sending, standby = f"host-a:{uuid.uuid4().hex[:6]}", f"host-b:{uuid.uuid4().hex[:6]}"
    record_beat(sending, sending=True)
    record_beat(standby, sending=False)
    assert beats_running() == BeatCount(before.sending + 1, before.standby + 1)
    # The standby takes over after the sender stopped cleanly.
    forget_beat(sending)
    record_beat(standby, sending=True)
    assert beats_running() == BeatCount(before.sending + 1, before.standby)
    forget_beat(standby)
    assert beats_running() == before
