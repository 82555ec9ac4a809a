"""What Munin and the gauge sampler read: small Redis counters, queue depths, beat's heartbeat age.

statsd (apps.core.metrics) is push-only; Munin polls. So beside each statsd packet the request
middleware and the Celery signals also bump a few counters in the cache's Redis, and
`snapshot()` (served on /internal/metrics to localhost only) reads them together with the queue
depths and beat's heartbeat age. Each call is one pipelined round trip; a Redis that fails is
left alone for a while, so an outage costs one timeout, not one per request.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
TASK_OUTCOMES = ("succeeded", "failed", "retried")
# Munin polls every 5 minutes; the response time it graphs is the mean over that window.
RESPONSE_TIME_WINDOW_MINUTES = 5
# Where beat's heartbeat is read when no beat_heartbeat_age() function is found (see README).
BEAT_HEARTBEAT_CACHE_KEY = "beat:heartbeat"
_BEAT_HEARTBEAT_PROVIDERS = ("apps.core.health", "apps.core.tasks", "apps.core.beat")
_PAUSE_AFTER_ERROR_SECONDS = 30.0

_paused_until = 0.0
_pause_lock = threading.Lock()


def _redis() -> Any | None:
    """The cache's Redis client, or None when the cache is not Redis or Redis just failed."""
    if time.monotonic() < _paused_until:
        return None
    get_client = getattr(getattr(cache, "client", None), "get_client", None)
    if get_client is None:
        return None
    return get_client(write=True)


def _pause(error: Exception) -> None:
    global _paused_until
    with _pause_lock:
        if time.monotonic() >= _paused_until:
            logger.warning(
                "monitoring counters paused for %.0fs: Redis failed (%s)", _PAUSE_AFTER_ERROR_SECONDS, error
            )
        _paused_until = time.monotonic() + _PAUSE_AFTER_ERROR_SECONDS


def _key(name: str) -> str:
    return str(cache.make_key(f"monitoring:{name}"))


def _run(build: Callable[[Any], None]) -> list[Any] | None:
    client = _redis()
    if client is None:
        return None
    try:
        pipe = client.pipeline(transaction=False)
        build(pipe)
        return list(pipe.execute())
    except Exception as error:
        _pause(error)
        return None


def count_request(*, status_class: str, milliseconds: float) -> None:
    """Count one answered request and add its duration to the current minute's bucket."""
    bucket = _key(f"response_time:{int(time.time() // 60)}")

    def build(pipe: Any) -> None:
        pipe.incr(_key(f"requests:{status_class}"))
        pipe.hincrby(bucket, "count", 1)
        pipe.hincrbyfloat(bucket, "milliseconds", milliseconds)
        pipe.expire(bucket, 60 * (RESPONSE_TIME_WINDOW_MINUTES + 2))

    _run(build)


def count_task(*, outcome: str) -> None:
    """Count one task outcome: succeeded, failed or retried."""
    _run(lambda pipe: pipe.incr(_key(f"tasks:{outcome}")))


def _counters() -> dict[str, Any]:
    now_minute = int(time.time() // 60)
    minutes = range(now_minute - RESPONSE_TIME_WINDOW_MINUTES + 1, now_minute + 1)

    def build(pipe: Any) -> None:
        pipe.mget([_key(f"requests:{name}") for name in STATUS_CLASSES])
        pipe.mget([_key(f"tasks:{name}") for name in TASK_OUTCOMES])
        for minute in minutes:
            pipe.hmget(_key(f"response_time:{minute}"), ["count", "milliseconds"])

    results = _run(build)
    if results is None:
        return {"requests": None, "tasks": None, "response_time_ms": None}
    requests, tasks, *buckets = results
    count = sum(int(bucket[0] or 0) for bucket in buckets)
    total = sum(float(bucket[1] or 0) for bucket in buckets)
    return {
        "requests": {name: int(value or 0) for name, value in zip(STATUS_CLASSES, requests, strict=True)},
        "tasks": {name: int(value or 0) for name, value in zip(TASK_OUTCOMES, tasks, strict=True)},
        "response_time_ms": {
            "mean": round(total / count, 3) if count else None,
            "requests": count,
            "window_seconds": RESPONSE_TIME_WINDOW_MINUTES * 60,
        },
    }


def monitored_queues() -> list[str]:
    """The Celery queues this project uses: its configured queues, else the default one."""
    from config.celery import app

    names = [queue.name for queue in (app.conf.task_queues or [])]
    return names or [app.conf.task_default_queue]


def queue_depths() -> dict[str, int] | None:
    """Messages waiting in each queue; None when there is no broker (eager tasks) or it is down.

    Redis: kombu's passive declare sums LLEN over the queue's list and its priority lists.
    RabbitMQ: the message_count of a passive queue_declare. A queue not declared yet holds nothing.
    """
    if settings.CELERY_TASK_ALWAYS_EAGER or not settings.CELERY_BROKER_URL:
        return None
    from config.celery import app

    depths: dict[str, int] = {}
    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, timeout=settings.HEALTH_CHECK_TIMEOUT)
            for name in monitored_queues():
                # A failed passive declare closes its channel on AMQP; each queue gets its own.
                channel: Any = connection.channel()
                try:
                    depths[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
                except connection.channel_errors:
                    depths[name] = 0
                finally:
                    # An AMQP channel closed by the broker after NOT_FOUND needs no closing.
                    with contextlib.suppress(Exception):
                        channel.close()
    except Exception as error:
        logger.warning("queue depths unavailable: broker failed (%s)", error)
        return None
    return depths


def beat_heartbeat_age() -> float | None:
    """Seconds since celery beat's last heartbeat; None when none was ever recorded.

    The beat conventions provide `beat_heartbeat_age()` in one of _BEAT_HEARTBEAT_PROVIDERS; until
    one does, the heartbeat is read from the cache key BEAT_HEARTBEAT_CACHE_KEY (unix seconds).
    """
    for module_name in _BEAT_HEARTBEAT_PROVIDERS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        provider = getattr(module, "beat_heartbeat_age", None)
        if callable(provider):
            age = provider()
            return None if age is None else float(age)
    value = cache.get(BEAT_HEARTBEAT_CACHE_KEY)
    if value is None:
        return None
    try:
        return max(0.0, time.time() - float(value))
    except (TypeError, ValueError):
        logger.warning("beat heartbeat %r under %s is not a unix time", value, BEAT_HEARTBEAT_CACHE_KEY)
        return None


def snapshot() -> dict[str, Any]:
    """Everything the Munin plugins graph, read from cheap sources (Redis and the broker)."""
    age = beat_heartbeat_age()
    return {
        **_counters(),
        "queues": queue_depths(),
        "beat_heartbeat_age_seconds": None if age is None else round(age, 3),
    }
