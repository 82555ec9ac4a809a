"""A real worker on a private Redis broker: tasks run, survive a killed worker, and carry request ids."""

import time
from collections.abc import Iterator
from importlib import import_module

import pytest
from django.conf import settings

from apps.core.observability.request_id import current_request_id
from apps.core.tasks import enqueue
from apps.core.tasks.queueing import clear_expired_sessions
from tests.celery.tasks import kill_own_process, record_effect
from tests.support.processes import CeleryProcess, celery, celery_env, publishing_to
from tests.support.waiting import wait_until

WORKER_ARGS = ("--concurrency=1", "--include=tests.celery.tasks")
MAX_DELIVERIES = 3

# All marked alike, so pytest-django keeps this module's tests together and the worker starts once.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def worker(database, redis_port, log_dir) -> Iterator[CeleryProcess]:
    env = celery_env(database=database, redis_port=redis_port, TASK_MAX_DELIVERIES=str(MAX_DELIVERIES))
    with celery("worker", env, log_dir, *WORKER_ARGS) as process:
        yield process


@pytest.fixture
def broker(redis_port) -> Iterator[None]:
    with publishing_to(f"redis://127.0.0.1:{redis_port}/1"):
        yield


@pytest.mark.usefixtures("broker")
def test_a_queued_task_runs_on_the_worker_and_its_effect_is_visible(worker):
    sessions = import_module(settings.SESSION_ENGINE).SessionStore
    expired = sessions()
    expired.set_expiry(-10)
    expired["user"] = "gone"
    expired.save()
    enqueue(clear_expired_sessions)
    session_model = sessions.get_model_class()
    wait_until(
        lambda: not session_model.objects.filter(session_key=expired.session_key).exists(),
        timeout=30,
        what="the worker to delete the expired session",
    )


@pytest.mark.usefixtures("broker")
def test_worker_log_lines_carry_the_request_id_of_the_request_that_queued_the_task(worker, effects):
    token = current_request_id.set("req-7f3a")
    try:
        record_effect.delay("logged")
    finally:
        current_request_id.reset(token)
    wait_until(lambda: effects.get("logged:completed"), timeout=30, what="the task to complete")
    worker.wait_for_log("tests.celery.tasks [req-7f3a] recording effect logged", timeout=5)


@pytest.mark.faults
def test_a_task_whose_worker_is_killed_mid_run_is_redelivered_and_applies_its_effect_once(
    database, redis_port, log_dir, effects
):
    """Broke: a Celery worker (Redis broker), killed with SIGKILL while a task ran, after its effect.
    Saw: nothing; the task finished on the next worker once the visibility timeout had passed.
    Lost: nothing; the task ran again and its effect was applied once.
    """
    # A broker database of its own: no other worker of this module sees or restores its messages.
    broker_url = f"redis://127.0.0.1:{redis_port}/3"
    visibility_timeout = 8
    # Short limits so the redelivery comes within seconds; the visibility timeout must exceed them.
    env = celery_env(
        database=database,
        redis_port=redis_port,
        broker_url=broker_url,
        CELERY_VISIBILITY_TIMEOUT=str(visibility_timeout),
        CELERY_TASK_TIME_LIMIT="4",
        CELERY_TASK_SOFT_TIME_LIMIT="3",
        TASK_RETRY_BACKOFF_MAX="2",
    )
    with celery("worker", env, log_dir, *WORKER_ARGS) as first:
        with publishing_to(broker_url):
            record_effect.delay("killed", 2.5)
        wait_until(lambda: effects.get("killed:applied"), timeout=30, what="the effect to be applied")
        first.kill()
        killed_at = time.monotonic()
    assert effects.get("killed:completed") is None, "the task finished before its worker was killed"

    # The broker hands the unacknowledged message out again once its visibility timeout has passed.
    time.sleep(max(0.0, killed_at + visibility_timeout + 0.5 - time.monotonic()))
    with celery("worker", env, log_dir, *WORKER_ARGS):
        wait_until(
            lambda: effects.get("killed:completed"), timeout=60, what="the redelivered task to complete"
        )
    assert int(effects.get("killed:attempts")) == 2
    assert int(effects.get("killed:applied")) == 1


@pytest.mark.usefixtures("broker")
@pytest.mark.faults
def test_a_task_that_kills_its_worker_every_time_is_dropped_after_the_delivery_bound(worker, effects):
    """Broke: the worker's pool process, killed by a task on every delivery (a poison message).
    Saw: the task dropped with an error line after TASK_MAX_DELIVERIES; the next task ran.
    Lost: that one task, by design, with an error line saying so; no other task.
    """
    kill_own_process.delay("poison")
    worker.wait_for_log("dropping task tests.celery.tasks.kill_own_process", timeout=60)
    assert int(effects.get("poison:attempts")) == MAX_DELIVERIES
    # The worker is not stuck on it: the next task runs.
    record_effect.delay("after-poison")
    wait_until(lambda: effects.get("after-poison:completed"), timeout=30, what="the next task to run")
    assert int(effects.get("poison:attempts")) == MAX_DELIVERIES
