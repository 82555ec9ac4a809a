"""The same worker on RabbitMQ: switching brokers is a change of CELERY_BROKER_URL alone."""

import os
import uuid
from collections.abc import Iterator

import kombu
import pytest

from tests.celery.tasks import record_effect
from tests.support.processes import CeleryProcess, celery, celery_env, publishing_to
from tests.support.waiting import wait_until

# The machine's RabbitMQ; each run uses a queue of its own, deleted at the end.
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
QUEUE = f"queue-test-{uuid.uuid4().hex[:12]}"
KILLED_QUEUE = f"{QUEUE}-killed"
WORKER_ARGS = ("--concurrency=1", "--include=tests.celery.tasks")

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def rabbitmq_worker(database, redis_port, log_dir) -> Iterator[CeleryProcess]:
    with kombu.Connection(RABBITMQ_URL, connect_timeout=3) as connection:
        try:
            connection.ensure_connection(max_retries=1)
        except Exception as error:
            pytest.fail(f"RabbitMQ unreachable at {RABBITMQ_URL} ({error}); set TEST_RABBITMQ_URL")
    env = celery_env(
        database=database, redis_port=redis_port, broker_url=RABBITMQ_URL, CELERY_TASK_DEFAULT_QUEUE=QUEUE
    )
    try:
        with celery("worker", env, log_dir, *WORKER_ARGS) as worker:
            yield worker
    finally:
        with kombu.Connection(RABBITMQ_URL, connect_timeout=3) as connection:
            channel = connection.default_channel
            for name in (QUEUE, KILLED_QUEUE):
                channel.queue_delete(name)
                channel.exchange_delete(name)


def test_a_task_queued_on_rabbitmq_runs_on_the_worker(rabbitmq_worker, effects):
    with publishing_to(RABBITMQ_URL):
        record_effect.apply_async(args=["rabbit"], queue=QUEUE)
    wait_until(lambda: effects.get("rabbit:completed"), timeout=30, what="the task to run")
    assert "amqp://guest:**@127.0.0.1:5672//" in rabbitmq_worker.log()


@pytest.mark.faults
def test_a_task_whose_worker_is_killed_mid_run_is_redelivered_by_rabbitmq_and_applies_its_effect_once(
    rabbitmq_worker, database, redis_port, log_dir, effects
):
    """Broke: a Celery worker (RabbitMQ broker), killed with SIGKILL while a task ran.
    Saw: nothing; RabbitMQ handed the task to the next worker as soon as the connection dropped.
    Lost: nothing; the task ran again and its effect was applied once.
    """
    env = celery_env(
        database=database,
        redis_port=redis_port,
        broker_url=RABBITMQ_URL,
        CELERY_TASK_DEFAULT_QUEUE=KILLED_QUEUE,
    )
    with celery("worker", env, log_dir, *WORKER_ARGS) as first:
        with publishing_to(RABBITMQ_URL):
            record_effect.apply_async(args=["rabbit-killed", 2.5], queue=KILLED_QUEUE)
        wait_until(lambda: effects.get("rabbit-killed:applied"), timeout=30, what="the effect to be applied")
        first.kill()
    assert effects.get("rabbit-killed:completed") is None, "the task finished before its worker was killed"
    # RabbitMQ requeues an unacknowledged message as soon as its consumer's connection is gone.
    with celery("worker", env, log_dir, *WORKER_ARGS):
        wait_until(lambda: effects.get("rabbit-killed:completed"), timeout=30, what="the redelivered task")
    assert int(effects.get("rabbit-killed:attempts")) == 2
    assert int(effects.get("rabbit-killed:applied")) == 1
