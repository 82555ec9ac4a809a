"""The once-per-interval guard of periodic tasks, beat's heartbeat and its roll call.

One beat sends (apps.core.tasks.beat), but a copy can still be sent twice: a beat killed between
sending an entry and saving its last run time sends it again when it restarts. So a periodic task
claims its run first; a copy published less than half an interval from the last claimed run is a
duplicate and skips with a log line. Sweeps (work whose message was lost) build on the same guard.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import redis.exceptions
from celery import current_task
from django.conf import settings
from django.core.cache import cache

from apps.core.data.cache import raw_client, raw_key
from apps.core.observability import metrics

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# Stamped on every message by apps.core.tasks.queueing when it is published (seconds since the epoch).
PUBLISHED_AT_HEADER = "core_published_at"
HEARTBEAT_CACHE_KEY = "beat:heartbeat"


def published_at() -> float:
    """When the running task's message was published (by beat, for a periodic task); else now."""
    request = getattr(current_task, "request", None)
    stamped = request.get(PUBLISHED_AT_HEADER) if request is not None else None
    return float(stamped) if stamped else time.time()


def current_copy() -> str:
    """The running task's id (a retry or a redelivery keeps it), or a new one outside a task."""
    request = getattr(current_task, "request", None)
    return (request.id if request is not None else None) or uuid.uuid4().hex


# Atomic, so two copies run at the same moment by two workers cannot both claim: the last claimed
# run stays unless this copy was published more than the gap after it. The same message again (a
# retry, or a redelivery after its worker died) is the same copy, and runs: its run did not finish.
_CLAIM_SCRIPT = """
local last = redis.call('GET', KEYS[1])
if last then
  local at, copy = string.match(last, '^(%S+) (%S+)$')
  if copy ~= ARGV[4] and tonumber(ARGV[1]) - tonumber(at) <= tonumber(ARGV[2]) then return at end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[4], 'EX', ARGV[3])
return false
"""


def _claim(key: str, at: float, gap: float, timeout: int, copy: str) -> float | None:
    """Record the run of `copy`, published at `at`, unless another copy's run was published at most
    `gap` before it; returns None when claimed, else that run's publication time."""
    client = raw_client()
    if client is None:
        # The file cache of a first run: no Redis to check and set atomically; one beat, no race.
        last = cache.get(key)
        if last is not None and last[1] != copy and at - last[0] <= gap:
            return float(last[0])
        cache.set(key, (at, copy), timeout=timeout)
        return None
    last = client.eval(_CLAIM_SCRIPT, 1, raw_key(key), repr(at), repr(gap), timeout, copy)
    return None if last is None else float(last)


def claim_slot(name: str, seconds: float, at: float | None = None, copy: str | None = None) -> bool:
    """Claim the run of `name`, an entry sent every `seconds`, whose copy was published at `at`
    (default: when this task was published); False if another copy's run was claimed at most half
    an interval away. `copy` names the message (default: the running task's id), so a retry or a
    redelivery of the same message is claimed again. If Redis cannot answer, the claim succeeds:
    running twice is the lesser harm for tasks that are idempotent, as every house task is.
    """
    at = published_at() if at is None else at
    try:
        last = _claim(
            f"periodic:last-run:{name}",
            at,
            seconds / 2,
            timeout=max(int(seconds) * 2, 60),
            copy=copy or current_copy(),
        )
    except redis.exceptions.RedisError as error:
        logger.warning("running %s unguarded: its last run could not be read (%s)", name, error)
        return True
    if last is not None:
        metrics.incr("celery.periodic.slot_taken")
        logger.info(
            "skipping %s: a copy published %.1fs apart from this one (interval %gs) already ran; "
            "is a second beat running?",
            name,
            abs(at - last),
            seconds,
        )
        return False
    return True


def once_per_slot(
    seconds: float | Callable[[], float], name: str | None = None
) -> Callable[[Callable[P, R]], Callable[P, R | None]]:
    """Run the decorated task body at most once per `seconds` (beat's interval for it, or a function
    read at each run), cluster-wide; see claim_slot. Put it under the task decorator.
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


def beat_heartbeat_age() -> float | None:
    """Seconds since beat published the last heartbeat task that a worker ran; None when none was
    ever recorded. What /readyz, the statsd gauge and Munin all read."""
    value: Any = cache.get(HEARTBEAT_CACHE_KEY)
    return None if value is None else max(0.0, time.time() - float(value))


# --- Beat's roll call: every beat, sending or standing by, answers on each tick -----------------


@dataclass(frozen=True)
class BeatCount:
    sending: int
    standby: int

    def __str__(self) -> str:
        return f"{self.sending} beat(s) sending, {self.standby} standing by"


def _roll_keys() -> tuple[str, str]:
    return raw_key("beat:sending"), raw_key("beat:standby")


def record_beat(instance: str, *, sending: bool) -> None:
    """Beat `instance` is alive, in this role; a beat not heard of for BEAT_LOCK_TIMEOUT is gone."""
    client = raw_client()
    if client is None:
        return
    now = time.time()
    sending_key, standby_key = _roll_keys()
    mine, other = (sending_key, standby_key) if sending else (standby_key, sending_key)
    pipe = client.pipeline(transaction=False)
    pipe.zadd(mine, {instance: now})
    pipe.zrem(other, instance)
    for key in (mine, other):
        pipe.zremrangebyscore(key, "-inf", now - settings.BEAT_LOCK_TIMEOUT)
        pipe.expire(key, settings.BEAT_LOCK_TIMEOUT * 2)
    pipe.execute()


def forget_beat(instance: str) -> None:
    """Beat `instance` stopped cleanly."""
    client = raw_client()
    if client is not None:
        for key in _roll_keys():
            client.zrem(key, instance)


def beats_running() -> BeatCount | None:
    """How many beats ticked within the last BEAT_LOCK_TIMEOUT seconds, by role; None when the
    cache is not Redis (no roll call). Raises what Redis raises."""
    client = raw_client()
    if client is None:
        return None
    since = time.time() - settings.BEAT_LOCK_TIMEOUT
    pipe = client.pipeline(transaction=False)
    for key in _roll_keys():
        pipe.zcount(key, since, "+inf")
    sending, standby = pipe.execute()
    return BeatCount(sending=int(sending), standby=int(standby))
