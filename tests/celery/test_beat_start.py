"""A new beat sends its first heartbeat as it starts, so /readyz does not call beat stale for the
first interval after a first start."""

import pytest
import redis
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from tests.support.processes import celery, celery_env
from tests.support.waiting import wait_until

KEY_PREFIX = "celery-test"  # celery_env's CACHE_KEY_PREFIX
HEARTBEAT_KEY = f"{KEY_PREFIX}:1:beat:heartbeat"

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def fresh_schedule(django_db_blocker):
    """No beat entries before or after: beat adds them as new, with no last run."""
    with django_db_blocker.unblock():
        PeriodicTask.objects.all().delete()
    yield
    with django_db_blocker.unblock():
        PeriodicTask.objects.all().delete()
        IntervalSchedule.objects.all().delete()
        CrontabSchedule.objects.all().delete()


def test_a_starting_beat_sends_a_heartbeat_before_its_first_interval(
    fresh_schedule, database, redis_port, log_dir, client, settings
):
    # An hour between heartbeats: a heartbeat seen within the test can only be the one sent at start.
    env = celery_env(database=database, redis_port=redis_port, BEAT_HEARTBEAT_INTERVAL="3600")
    heartbeats = redis.Redis(port=redis_port, db=0)
    heartbeats.delete(HEARTBEAT_KEY)
    settings.BEAT_HEARTBEAT_MAX_AGE = 5 * 3600
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{redis_port}/0",
            "KEY_PREFIX": KEY_PREFIX,
        }
    }
    with celery("worker", env, log_dir, "--concurrency=1"), celery("beat", env, log_dir) as beat:
        wait_until(lambda: heartbeats.get(HEARTBEAT_KEY), timeout=60, what="the heartbeat sent at start")
        beat_check = client.get(reverse("readyz")).json()["checks"]["beat"]
    assert beat_check["ok"] is True, beat_check
    assert PeriodicTask.objects.get(name="core.beat-heartbeat").interval.every == 3600
    assert "Sending due task core.beat-heartbeat" in beat.log()
