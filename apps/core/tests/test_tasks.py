"""Task conventions, run eagerly in this process: retries, the slot lock, the shipped periodic tasks,
and what a request sees when the broker is down."""

import logging
import time
from importlib import import_module

import pytest
import redis.exceptions
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.urls import path

from apps.core import metrics
from apps.core.periodic import claim_slot, last_heartbeat, once_per_slot
from apps.core.tasks import beat_heartbeat, clear_expired_sessions, enqueue, keel_task
from tests.helpers import closed_port, silent_server
from tests.processes import publishing_to

attempts: list[str] = []


@keel_task
def flaky_until_third_attempt(key: str) -> str:
    attempts.append(key)
    if attempts.count(key) < 3:
        raise redis.exceptions.ConnectionError("Redis went away")
    return "done"


@keel_task
def always_unreachable(key: str) -> None:
    attempts.append(key)
    raise redis.exceptions.TimeoutError("Redis did not answer")


@keel_task
def wrong_input(key: str) -> None:
    attempts.append(key)
    raise ValueError("not a transient error")


@pytest.fixture
def eager_retries():
    """Eager mode re-runs a retry in place only when it does not re-raise the Retry at once."""
    from config.celery import app

    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = True


@pytest.mark.usefixtures("eager_retries")
def test_a_transient_error_is_retried_until_the_task_succeeds():
    result = flaky_until_third_attempt.apply(args=["flaky"])
    assert result.get() == "done"
    assert attempts.count("flaky") == 3


@pytest.mark.usefixtures("eager_retries")
def test_retries_of_a_transient_error_stop_at_the_cap():
    with pytest.raises(redis.exceptions.TimeoutError):
        always_unreachable.apply(args=["cap"]).get()
    assert attempts.count("cap") == 1 + settings.TASK_MAX_RETRIES


@pytest.mark.usefixtures("eager_retries")
def test_a_programming_error_is_not_retried():
    with pytest.raises(ValueError, match="not a transient error"):
        wrong_input.apply(args=["bug"]).get()
    assert attempts.count("bug") == 1


def test_retries_back_off_exponentially_with_jitter_up_to_the_cap():
    task = flaky_until_third_attempt
    assert (task.retry_backoff, task.retry_jitter) == (True, True)
    assert task.retry_backoff_max == settings.TASK_RETRY_BACKOFF_MAX
    # The longest wait must never outlast the broker's redelivery of a waiting message.
    assert settings.TASK_RETRY_BACKOFF_MAX < settings.CELERY_VISIBILITY_TIMEOUT


def test_a_slot_is_claimed_once_and_the_next_slot_again():
    at = 1_800_000_000.0
    assert claim_slot("report", seconds=60, at=at) is True
    assert claim_slot("report", seconds=60, at=at + 30) is False
    assert claim_slot("report", seconds=60, at=at + 60) is True


def test_a_periodic_task_body_runs_once_per_slot_even_if_two_beats_queue_it(caplog):
    runs = []

    @once_per_slot(seconds=3600)
    def sweep() -> str:
        runs.append(1)
        return "swept"

    with caplog.at_level(logging.INFO, logger="apps.core.periodic"):
        assert sweep() == "swept"
        assert sweep() is None
    assert runs == [1]
    assert "already ran; is a second beat running?" in caplog.text


def test_the_heartbeat_records_when_beat_published_it():
    before = time.time()
    beat_heartbeat.apply()
    recorded = last_heartbeat()
    assert recorded is not None
    assert before - 1 <= recorded <= time.time()


@pytest.mark.django_db
def test_clearing_sessions_deletes_expired_ones_and_keeps_live_ones():
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    expired, live = store_class(), store_class()
    expired.set_expiry(-10)
    expired["user"] = "gone"
    expired.save()
    live["user"] = "here"
    live.save()
    clear_expired_sessions.apply()
    session_model = store_class.get_model_class()
    assert not session_model.objects.filter(session_key=expired.session_key).exists()
    assert session_model.objects.filter(session_key=live.session_key).exists()


# --- A request that queues work while the broker is down ------------------------------------


def queue_and_answer(request: HttpRequest) -> JsonResponse:
    with transaction.atomic():
        enqueue(beat_heartbeat)
    return JsonResponse({"saved": True}, status=201)


urlpatterns = [path("queue/", queue_and_answer)]


@pytest.fixture
def counted(monkeypatch) -> list[str]:
    """The metric names counted through apps.core.metrics (its backend is configured elsewhere)."""
    names: list[str] = []
    monkeypatch.setattr(metrics, "incr", lambda name, value=1: names.append(name))
    return names


@pytest.mark.urls(__name__)
@pytest.mark.django_db(transaction=True)
def test_a_request_queuing_work_while_the_broker_is_down_succeeds_and_the_failure_is_logged_and_counted(
    client, caplog, counted
):
    with publishing_to(f"redis://127.0.0.1:{closed_port()}/1"):
        started = time.monotonic()
        response = client.post("/queue/", HTTP_X_REQUEST_ID="req-broker-down")
        elapsed = time.monotonic() - started
    assert response.status_code == 201
    assert elapsed < 3
    assert counted.count("celery.enqueue.failed") == 1
    failure = next(record for record in caplog.records if record.getMessage().startswith("could not queue"))
    assert "apps.core.tasks.beat_heartbeat" in failure.getMessage()
    assert failure.request_id == "req-broker-down"


@pytest.mark.urls(__name__)
@pytest.mark.django_db(transaction=True)
def test_a_broker_that_hangs_delays_the_request_by_seconds_not_minutes(client, counted):
    with silent_server() as port, publishing_to(f"redis://127.0.0.1:{port}/1"):
        started = time.monotonic()
        response = client.post("/queue/")
        elapsed = time.monotonic() - started
    assert response.status_code == 201
    assert elapsed < 6
    assert counted.count("celery.enqueue.failed") == 1


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_a_failing_task_is_logged_as_a_task_failure_not_a_queueing_one(caplog, counted):
    enqueue(wrong_input, "eager")
    assert attempts.count("eager") == 1
    assert "celery.enqueue.failed" not in counted
    assert "apps.core.tests.test_tasks.wrong_input failed (run eagerly" in caplog.text
