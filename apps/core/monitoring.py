"""What Munin and the gauge sampler read: small Redis counters, queue depths, beat's heartbeat age,
and the count of dead letters waiting (one indexed COUNT in the database).

statsd (apps.core.metrics) is push-only; Munin polls. So beside each statsd packet the request
middleware and the Celery signals also count in memory, and a background thread of each process
adds those counts to a few counters in the cache's Redis every FLUSH_INTERVAL_SECONDS: a slow or
hung Redis never costs a request any time. `snapshot()` (served on /internal/metrics to localhost
only) reads the counters together with the queue depths and beat's heartbeat age. A Redis that
fails is left alone for a while and the counts meanwhile are dropped (Munin shows a gap).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache

from apps.core import metrics
from apps.core.cache import raw_client, raw_key
from apps.core.periodic import beats_running

logger = logging.getLogger(__name__)

STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
TASK_OUTCOMES = ("succeeded", "failed", "retried")
# Munin polls every 5 minutes; the response time it graphs is the mean over that window.
RESPONSE_TIME_WINDOW_MINUTES = 5
# Where beat's heartbeat is read when no beat_heartbeat_age() function is found (see README).
BEAT_HEARTBEAT_CACHE_KEY = "beat:heartbeat"
_BEAT_HEARTBEAT_PROVIDERS = ("apps.core.periodic", "apps.core.health", "apps.core.tasks")
_PAUSE_AFTER_ERROR_SECONDS = 30.0
FLUSH_INTERVAL_SECONDS = 2.0

# Until when counting is paused, by Redis server (the cache's LOCATION).
_paused_until: dict[str, float] = {}
_pause_lock = threading.Lock()


def _server() -> str:
    return str(getattr(cache, "_server", ""))


def _redis() -> Any | None:
    """The cache's Redis client, or None when the cache is not Redis or Redis just failed."""
    if time.monotonic() < _paused_until.get(_server(), 0.0):
        return None
    return raw_client()


def _pause(error: Exception) -> None:
    server = _server()
    with _pause_lock:
        if time.monotonic() >= _paused_until.get(server, 0.0):
            logger.warning(
                "monitoring counters paused for %.0fs: Redis failed (%s)", _PAUSE_AFTER_ERROR_SECONDS, error
            )
        _paused_until[server] = time.monotonic() + _PAUSE_AFTER_ERROR_SECONDS


def _key(name: str) -> str:
    return raw_key(f"monitoring:{name}")


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


class _Pending:
    """Counts not yet written to Redis, for this process; a background thread flushes them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        # Minute of the epoch -> [requests, total milliseconds].
        self.response_times: dict[int, list[float]] = {}
        self.flusher: threading.Thread | None = None


_pending = _Pending()
# Held for a whole flush, so that a snapshot's flush waits for the flusher thread's.
_flush_lock = threading.Lock()


def _reset_after_fork() -> None:
    # A forked child (gunicorn worker, Celery pool process) has no flusher thread of its own yet.
    global _pending, _flush_lock
    _pending = _Pending()
    _flush_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


def flush_at_exit() -> None:
    """Write what is pending as the process ends (gunicorn worker restart, Celery pool recycling)."""
    with contextlib.suppress(Exception):
        flush()


atexit.register(flush_at_exit)


def _flush_forever() -> None:
    while True:
        time.sleep(FLUSH_INTERVAL_SECONDS)
        try:
            flush()
        except Exception:
            logger.exception("monitoring counters could not be flushed")


def _ensure_flusher() -> None:
    pending = _pending
    if pending.flusher is None or not pending.flusher.is_alive():
        with pending.lock:
            if pending.flusher is None or not pending.flusher.is_alive():
                pending.flusher = threading.Thread(
                    target=_flush_forever, name="monitoring-flush", daemon=True
                )
                pending.flusher.start()


def count_request(*, status_class: str, milliseconds: float) -> None:
    """Count one answered request and add its duration to the current minute (in memory)."""
    minute = int(time.time() // 60)
    pending = _pending
    with pending.lock:
        name = f"requests:{status_class}"
        pending.counts[name] = pending.counts.get(name, 0) + 1
        bucket = pending.response_times.setdefault(minute, [0, 0.0])
        bucket[0] += 1
        bucket[1] += milliseconds
    _ensure_flusher()


def record_request(*, view_name: str | None, status_class: str, milliseconds: float) -> None:
    """An answered request: its time by view and its status class, to statsd and to these counters.

    The request middleware records every request Django answers; the front cache
    (apps/core/public_cache.py) the ones it answers before Django.
    """
    view = metrics.metric_segment(view_name) if view_name else "unresolved"
    metrics.timing(f"request.time.{view}", milliseconds)
    metrics.incr(f"request.status.{status_class}")
    count_request(status_class=status_class, milliseconds=milliseconds)


def count_task(*, outcome: str) -> None:
    """Count one task outcome, succeeded, failed or retried (in memory)."""
    pending = _pending
    with pending.lock:
        name = f"tasks:{outcome}"
        pending.counts[name] = pending.counts.get(name, 0) + 1
    _ensure_flusher()


def flush() -> None:
    """Add this process's pending counts to the Redis counters. Counts a failed Redis loses are dropped."""
    with _flush_lock:
        pending = _pending
        with pending.lock:
            counts, pending.counts = pending.counts, {}
            response_times, pending.response_times = pending.response_times, {}
        if not counts and not response_times:
            return

        def build(pipe: Any) -> None:
            for name, increment in counts.items():
                pipe.incrby(_key(name), increment)
            for minute, (requests, milliseconds) in response_times.items():
                bucket = _key(f"response_time:{minute}")
                pipe.hincrby(bucket, "count", int(requests))
                pipe.hincrbyfloat(bucket, "milliseconds", milliseconds)
                pipe.expire(bucket, 60 * (RESPONSE_TIME_WINDOW_MINUTES + 2))

        _run(build)


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
    from config.celery import app

    # Celery's own view of its configuration, which is what its producers and workers use.
    if app.conf.task_always_eager or not app.conf.broker_url:
        return None

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

    Asks the beat conventions' `beat_heartbeat_age()` or `last_heartbeat()` (unix time) in one of
    _BEAT_HEARTBEAT_PROVIDERS when one exists; else reads the cache key BEAT_HEARTBEAT_CACHE_KEY
    (unix seconds), where beat's heartbeat task records it.
    """
    for module_name in _BEAT_HEARTBEAT_PROVIDERS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        age_of = getattr(module, "beat_heartbeat_age", None)
        if callable(age_of):
            age = age_of()
            return None if age is None else float(age)
        last_of = getattr(module, "last_heartbeat", None)
        if callable(last_of):
            last = last_of()
            return None if last is None else max(0.0, time.time() - float(last))
    value = cache.get(BEAT_HEARTBEAT_CACHE_KEY)
    if value is None:
        return None
    try:
        return max(0.0, time.time() - float(value))
    except (TypeError, ValueError):
        logger.warning("beat heartbeat %r under %s is not a unix time", value, BEAT_HEARTBEAT_CACHE_KEY)
        return None


def dead_letters_waiting() -> int | None:
    """Tasks that failed for good and were not run again yet; None when the database cannot answer."""
    from apps.core.models import DeadLetter

    try:
        return DeadLetter.objects.filter(rerun_at__isnull=True).count()
    except Exception as error:
        logger.warning("dead letters uncounted: database failed (%s)", error)
        return None


def beats() -> dict[str, int] | None:
    """How many celery beats run, sending and standing by (apps.core.periodic's roll call)."""
    try:
        count = beats_running()
    except Exception as error:
        logger.warning("beat count unavailable: Redis failed (%s)", error)
        return None
    return None if count is None else {"sending": count.sending, "standby": count.standby}


def snapshot() -> dict[str, Any]:
    """Everything the Munin plugins graph, read from cheap sources (Redis and the broker)."""
    flush()
    age = beat_heartbeat_age()
    return {
        **_counters(),
        "queues": queue_depths(),
        "beat_heartbeat_age_seconds": None if age is None else round(age, 3),
        "dead_letters": dead_letters_waiting(),
        "beats": beats(),
    }
