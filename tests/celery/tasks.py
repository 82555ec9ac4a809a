"""Tasks the real-worker tests queue (the worker imports them with `-I tests.celery.tasks`).

Their effects go to database 2 of the test's private Redis, where the test reads them.
"""

import logging
import os
import signal
import time

import redis
from django.conf import settings

from apps.core.tasks import house_task

logger = logging.getLogger(__name__)


def effects() -> redis.Redis:
    return redis.Redis.from_url(f"{settings.REDIS_URL}/2")


@house_task
def record_effect(key: str, hold_seconds: float = 0) -> None:
    """Apply an effect exactly once however often it is delivered; the first delivery then holds."""
    store = effects()
    attempt = store.incr(f"{key}:attempts")
    logger.info("recording effect %s", key)
    # Idempotent: the effect is a SET NX, so a redelivered message cannot apply it twice.
    if store.set(f"{key}:effect", "done", nx=True):
        store.incr(f"{key}:applied")
    if attempt == 1:
        time.sleep(hold_seconds)
    store.incr(f"{key}:completed")


@house_task
def kill_own_process(key: str) -> None:
    """A poison message: every delivery kills the pool process running it."""
    effects().incr(f"{key}:attempts")
    os.kill(os.getpid(), signal.SIGKILL)
