"""Readiness checks: each dependency is probed in parallel with a deadline.

A hung dependency must not hang the probe: the load balancer and the orchestrator call
/readyz every few seconds and need an answer within two seconds either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from kombu import Connection

from apps.core.data.cache import raw_client
from apps.core.tasks.monitoring import broker_durability_problems
from apps.core.tasks.periodic import beat_heartbeat_age, beats_running

logger = logging.getLogger(__name__)

# Threads outlive a probe that timed out; a small shared pool bounds how many can pile up.
_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="readyz")


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    # An advisory check is reported but does not make the instance unready.
    required: bool = True
    # How long the check took to answer; None when it did not answer in time.
    seconds: float | None = None


def check_database() -> str:
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        # The check runs in a pool thread; its connection must not linger there.
        connection.close()
    return "ok"


def check_cache() -> str:
    # django-redis swallows errors (IGNORE_EXCEPTIONS), so ask the client directly.
    client = raw_client()
    if client is not None:
        client.ping()
        return "ok"
    cache.set("readyz", "ok", 5)
    if cache.get("readyz") != "ok":
        raise RuntimeError("cache did not return the value just written")
    return "ok (files on this host)"


def tasks_run_eagerly() -> bool:
    """No broker: tasks run inside the web process, and there is no worker or beat to check."""
    return settings.CELERY_TASK_ALWAYS_EAGER or not settings.CELERY_BROKER_URL


def check_broker() -> str:
    if tasks_run_eagerly():
        return "ok (eager, no broker)"
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=settings.HEALTH_CHECK_TIMEOUT) as connection:
        connection.ensure_connection(max_retries=1, timeout=settings.HEALTH_CHECK_TIMEOUT)
    return "ok"


def check_beat() -> str:
    if tasks_run_eagerly():
        return "ok (eager, no beat)"
    beats = beats_running()
    if beats is not None and beats.sending > 1:
        raise RuntimeError(f"{beats}: more than one beat sends; do they share the cache's Redis?")
    age = beat_heartbeat_age()
    if age is None:
        raise RuntimeError(f"no heartbeat recorded ({beats}): are celery beat and a worker running?")
    if age > settings.BEAT_HEARTBEAT_MAX_AGE:
        raise RuntimeError(
            f"stale: last heartbeat {age:.0f}s ago (limit {settings.BEAT_HEARTBEAT_MAX_AGE}s; {beats}); "
            "is celery beat (or every worker) stopped?"
        )
    return f"ok (last heartbeat {age:.0f}s ago; {beats})"


def check_broker_durability() -> str:
    problems = broker_durability_problems()
    if problems:
        raise RuntimeError("; ".join(problems) + " (see docs/production.md, Redis for the broker)")
    return "ok"


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
    "beat": check_beat,
    "broker_durability": check_broker_durability,
}
# A stopped beat must not take every web instance out of the load balancer: it is reported in
# the body (status "degraded") for monitoring to alert on, and the answer stays 200.
# A broker that may lose tasks is a configuration to fix, not a reason to stop serving.
ADVISORY_CHECKS = frozenset({"beat", "broker_durability"})


def _timed(check: Callable[[], str]) -> tuple[str, float, Exception | None]:
    started = time.monotonic()
    try:
        detail = check()
    except Exception as error:
        return "", time.monotonic() - started, error
    return detail, time.monotonic() - started, None


def run_checks(timeout: float | None = None) -> list[CheckResult]:
    """Run every check concurrently; a check still running at `timeout` counts as failed."""
    timeout = settings.HEALTH_CHECK_TIMEOUT if timeout is None else timeout
    started = time.monotonic()
    futures = {name: _executor.submit(_timed, check) for name, check in CHECKS.items()}
    wait(futures.values(), timeout=timeout)
    results = []
    for name, future in futures.items():
        required = name not in ADVISORY_CHECKS
        if not future.done():
            results.append(CheckResult(name, False, f"no answer within {timeout:g}s", required))
            continue
        detail, seconds, error = future.result()
        if error is None:
            results.append(CheckResult(name, True, detail, required, seconds))
        else:
            results.append(
                CheckResult(name, False, f"{type(error).__name__}: {error}"[:200], required, seconds)
            )
    failed = [f"{result.name} ({result.detail})" for result in results if not result.ok]
    if failed:
        # The details (hosts, ports, errors) are for the operator: /readyz shows the public only names.
        logger.warning(
            "readiness check failed: %s", "; ".join(failed), extra={"elapsed": time.monotonic() - started}
        )
    return results
