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
from django.urls import path, reverse

from apps.core.models import DeadLetter
from apps.core.observability import metrics
from apps.core.tasks import enqueue, house_task, once_per_slot
from apps.core.tasks.periodic import beat_heartbeat_age, claim_slot
from apps.core.tasks.queueing import beat_heartbeat, clear_expired_sessions
from tests.support.net import closed_port, silent_server
from tests.support.processes import publishing_to

attempts: list[str] = []


@house_task
def flaky_until_third_attempt(key: str) -> str:
    attempts.append(key)
    if attempts.count(key) < 3:
        raise redis.exceptions.ConnectionError("Redis went away")
    return "done"


@house_task
def always_unreachable(key: str) -> None:
    attempts.append(key)
    raise redis.exceptions.TimeoutError("Redis did not answer")


@house_task
def wrong_input(key: str) -> None:
    attempts.append(key)
    raise ValueError("not a transient error")


@pytest.fixture
def eager_failures():
    """Eager tasks whose failure is recorded on the result instead of raised at the caller."""
    from config.celery import app

    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = True


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_failures")
def test_a_programming_error_is_not_retried_and_becomes_a_dead_letter_with_what_reruns_it(counted):
    result = wrong_input.apply(args=["bug"], task_id="bug-task")
    with pytest.raises(ValueError, match="not a transient error"):
        result.get()
    assert attempts.count("bug") == 1
    letter = DeadLetter.objects.get(task_id="bug-task")
    assert (letter.task_name, letter.args, letter.kwargs, letter.attempts) == (
        "apps.core.tests.test_tasks.wrong_input",
        ["bug"],
        {},
        1,
    )
    assert "ValueError: not a transient error" in letter.error
    assert counted.count("celery.task.dead_lettered") == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_failures")
def test_without_a_broker_a_transient_error_fails_at_once_into_a_dead_letter():
    # Eager tasks have no broker to wait in; a worker retries for TASK_RETRY_WINDOW instead
    # (tests/faults/test_task_delivery.py).
    with pytest.raises(redis.exceptions.TimeoutError):
        always_unreachable.apply(args=["eager-transient"], task_id="eager-task").get()
    assert attempts.count("eager-transient") == 1
    assert DeadLetter.objects.filter(task_id="eager-task", attempts=1).exists()


@pytest.mark.usefixtures("eager_failures")
def test_a_dead_letter_that_cannot_be_written_is_logged_with_its_whole_payload(caplog, counted):
    # No database access in this test: the write fails as it does while the database is down.
    with pytest.raises(ValueError, match="not a transient error"):
        wrong_input.apply(args=["unwritable"], kwargs={}, task_id="unwritable-task").get()
    line = next(r for r in caplog.records if r.getMessage().startswith("could not record dead letter"))
    assert line.levelname == "ERROR"
    assert "wrong_input[unwritable-task] args=['unwritable'] kwargs={} attempts=1" in line.getMessage()
    assert "ValueError" in line.getMessage()
    assert counted.count("celery.task.dead_letter_unrecorded") == 1


def test_retries_are_bounded_by_a_window_and_back_off_with_full_jitter_within_the_visibility_timeout():
    task = flaky_until_third_attempt
    assert (task.retry_backoff, task.retry_jitter, task.max_retries) == (True, True, None)
    assert task.retry_backoff_max == settings.TASK_RETRY_BACKOFF_MAX
    assert settings.TASK_RETRY_WINDOW >= 600
    # A retry's message is held through its countdown and its run: the two together must never
    # outlast the broker's redelivery of an unacknowledged message...
    assert task.default_retry_delay <= settings.TASK_RETRY_BACKOFF_MAX
    assert settings.TASK_RETRY_BACKOFF_MAX + settings.CELERY_TASK_TIME_LIMIT < (
        settings.CELERY_VISIBILITY_TIMEOUT
    )
    # ...and a dead worker's tasks come back within minutes, not an hour.
    assert settings.CELERY_VISIBILITY_TIMEOUT <= 600


@pytest.mark.django_db(transaction=True)
def test_the_admin_runs_a_dead_letter_again_and_marks_it(admin_client):
    letter = DeadLetter.objects.create(
        task_name="apps.core.tests.test_tasks.flaky_until_third_attempt",
        task_id="dead-1",
        args=["from-admin"],
        error="redis.exceptions.ConnectionError: Redis went away",
        attempts=7,
    )
    attempts.extend(["from-admin", "from-admin"])  # the dependency is back: the next run succeeds
    changelist = reverse("admin:core_deadletter_changelist")
    assert b"Redis went away" in admin_client.get(changelist).content
    answer = admin_client.post(
        changelist, {"action": "run_again", "_selected_action": [letter.pk]}, follow=True
    )
    assert b"Queued 1 task(s) again." in answer.content
    assert attempts.count("from-admin") == 3
    letter.refresh_from_db()
    assert letter.rerun_at is not None
    assert letter.rerun_task_id


@pytest.mark.django_db
def test_the_admin_says_which_dead_letters_it_could_not_run_again(admin_client):
    letter = DeadLetter.objects.create(
        task_name="apps.removed.tasks.gone", task_id="dead-2", error="x", attempts=1
    )
    answer = admin_client.post(
        reverse("admin:core_deadletter_changelist"),
        {"action": "run_again", "_selected_action": [letter.pk]},
        follow=True,
    )
    assert b"no task named apps.removed.tasks.gone" in answer.content
    letter.refresh_from_db()
    assert letter.rerun_at is None


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

    with caplog.at_level(logging.INFO, logger="apps.core.tasks.periodic"):
        assert sweep() == "swept"
        assert sweep() is None
    assert runs == [1]
    assert "already ran; is a second beat running?" in caplog.text


def test_the_heartbeat_records_when_beat_published_it():
    before = time.time()
    beat_heartbeat.apply()
    age = beat_heartbeat_age()
    assert age is not None
    # Whole seconds are stored: the age is at most what passed since `before`, plus that second.
    assert 0 <= age <= time.time() - before + 1


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
    """The metric names counted through apps.core.observability.metrics (its backend is set elsewhere)."""
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
