"""Building blocks of periodic work: the one-run-per-slot lock and beat's heartbeat.

Beat must run exactly once per cluster, but a second instance gets started by mistake sooner or
later (a deploy that overlaps, a developer's `make beat` against production). Each periodic
task therefore claims its time slot before doing anything: the first claim of a slot wins,
every later one (the second beat's copy of the message) skips with a log line.

The same lock is what a sweep builds on: a periodic task that finds work whose message was
lost (the broker was down when the request queued it) and queues it again, once per slot.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from celery import current_task
from django.core.cache import cache

from apps.core import metrics

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# Stamped on every message by apps.core.tasks when it is published (seconds since the epoch).
PUBLISHED_AT_HEADER = "keel_published_at"
HEARTBEAT_CACHE_KEY = "beat:heartbeat"


def slot_of(seconds: float, at: float) -> int:
    """The number of the `seconds`-long slot, counted from the epoch, that time `at` falls in."""
    return int(at // seconds)


def published_at() -> float:
    """When the running task's message was published (by beat, for a periodic task); else now."""
    request = getattr(current_task, "request", None)
    stamped = request.get(PUBLISHED_AT_HEADER) if request is not None else None
    return float(stamped) if stamped else time.time()


def claim_slot(name: str, seconds: float, at: float | None = None) -> bool:
    """Claim the slot of `name` that `at` (default: when this task was published) falls in.

    True for the first claim of a slot, False for every later one. A Redis SET NX with an expiry,
    through the cache. If the cache cannot answer, the claim succeeds: running twice is the
    lesser harm for tasks that are idempotent, as every Keel task is.
    """
    at = published_at() if at is None else at
    slot = slot_of(seconds, at)
    key = f"slot:{name}:{int(seconds)}:{slot}"
    claimed = cache.add(key, int(at), timeout=max(int(seconds) * 2, 60))
    if claimed is False:
        metrics.incr("celery.periodic.slot_taken")
        logger.info("skipping %s: slot %d (%gs) already ran; is a second beat running?", name, slot, seconds)
        return False
    return True


def once_per_slot(
    seconds: float | Callable[[], float], name: str | None = None
) -> Callable[[Callable[P, R]], Callable[P, R | None]]:
    """Run the decorated task body at most once per `seconds`-long slot, cluster-wide.

    `seconds` may be a function, read at each run, for a slot that follows a setting.

    Put it under the task decorator:

        @keel_task
        @once_per_slot(seconds=60)
        def publish_due_articles() -> None: ...
    """

    def decorate(function: Callable[P, R]) -> Callable[P, R | None]:
        lock_name = name or f"{function.__module__}.{function.__qualname__}"

        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
            if not claim_slot(lock_name, seconds() if callable(seconds) else seconds):
                return None
            return function(*args, **kwargs)

        return wrapper

    return decorate


def record_heartbeat(at: float) -> None:
    # An int is stored raw by django-redis, so monitoring can read it with a plain GET.
    cache.set(HEARTBEAT_CACHE_KEY, int(at), timeout=None)


def last_heartbeat() -> float | None:
    """When beat last published its heartbeat task (that a worker ran), or None if never seen."""
    value: Any = cache.get(HEARTBEAT_CACHE_KEY)
    return float(value) if value is not None else None
