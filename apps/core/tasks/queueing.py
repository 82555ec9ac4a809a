"""How the project queues and runs work: after the data is committed, never failing the caller.

`@house_task` gives a task the house conventions, documented with the tasks: transient errors
retried with full-jitter backoff for TASK_RETRY_WINDOW seconds after the first failure; what fails
for good, or keeps killing its worker for TASK_MAX_DELIVERIES deliveries, recorded as a DeadLetter
row, re-runnable from the admin; log lines carrying the id of the request that queued it.
`enqueue(task, *args)` queues it from the service that wrote the data, once that commits.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterable
from contextvars import Token
from functools import partial
from importlib import import_module
from typing import Any

import kombu.exceptions
import redis.exceptions
from celery import Task, shared_task, signals
from celery.exceptions import MaxRetriesExceededError, Reject
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.utils import InterfaceError, OperationalError
from django.utils import timezone

from apps.core.observability import metrics
from apps.core.observability.request_id import current_request_id
from apps.core.tasks.periodic import (
    PUBLISHED_AT_HEADER,
    claim_slot,
    once_per_slot,
    published_at,
    record_heartbeat,
)

logger = logging.getLogger(__name__)

# The header that carries the queuing request's id to the worker.
REQUEST_ID_HEADER = "core_request_id"
# The header that carries the time of a task's first failure from retry to retry (unix seconds).
FIRST_FAILURE_HEADER = "core_first_failure_at"

# Errors that say "try again later", not "this task is wrong".
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,
    ConnectionError,
    TimeoutError,
)


def _send(task: Task, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    eager = task.app.conf.task_always_eager
    try:
        task.apply_async(args=args, kwargs=kwargs)
    except Exception:
        if eager:
            # No broker: the task ran here and failed, as it would have on a worker.
            logger.exception("task %s failed (run eagerly: no broker is configured)", task.name)
            return
        metrics.incr("celery.enqueue.failed")
        # The data is committed; a periodic sweep finds what this message would have done.
        logger.exception("could not queue task %s; a periodic sweep will pick the work up", task.name)


def enqueue(task: Task, *args: Any, **kwargs: Any) -> None:
    """Queue `task` once the current transaction commits (at once outside a transaction).

    Never raises for a broker outage, and gives up within the broker's connect and read timeouts
    (publishing is not retried: CELERY_TASK_PUBLISH_RETRY), so the request that queues carries on.
    """
    transaction.on_commit(partial(_send, task, args, kwargs))


def _delivery_key(task_id: str, retries: int) -> str:
    # A retry is a new message with the same id; count each attempt's deliveries on its own.
    return f"celery:deliveries:{task_id}:{retries}"


def _count_delivery(key: str) -> int:
    """How many times this message has been delivered, this one included (1 if the cache is down)."""
    cache.add(key, 0, timeout=max(86_400, settings.CELERY_VISIBILITY_TIMEOUT * settings.TASK_MAX_DELIVERIES))
    try:
        count = cache.incr(key)
    except ValueError:
        return 1
    return int(count) if count is not None else 1


def record_dead_letter(task: Task, exc: BaseException, args: Any, kwargs: Any, error: str = "") -> bool:
    """Record that `task` failed for good; False (and the whole payload logged at ERROR) if it cannot be."""
    from apps.core.models import DeadLetter

    request = task.request
    task_id = request.id or ""
    attempts = request.retries + 1
    error = error or f"{type(exc).__name__}: {exc}"
    try:
        DeadLetter.objects.update_or_create(
            task_id=task_id,
            defaults={
                "task_name": task.name,
                "args": list(args or ()),
                "kwargs": dict(kwargs or {}),
                "error": error,
                "attempts": attempts,
            },
        )
    except Exception:
        metrics.incr("celery.task.dead_letter_unrecorded")
        logger.exception(
            "could not record dead letter for task %s[%s] args=%r kwargs=%r attempts=%d error=%s",
            task.name,
            task_id,
            args,
            kwargs,
            attempts,
            error,
            extra={"task_id": task_id, "task_name": task.name},
        )
        return False
    metrics.incr("celery.task.dead_lettered")
    logger.error(
        "task %s[%s] failed for good after %d attempt(s), recorded as a dead letter: %s",
        task.name,
        task_id,
        attempts,
        error.splitlines()[0] if error else "",
        # The exception itself, so that Sentry counts this line as the failure it already reported.
        exc_info=exc,
        extra={"task_id": task_id, "task_name": task.name},
    )
    return True


class HouseTask(Task):
    """The base of every house task: retries transient errors for a window, bounds redeliveries,
    and records what fails for good as a dead letter."""

    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = True
    retry_backoff_max = settings.TASK_RETRY_BACKOFF_MAX
    retry_jitter = True
    # A retry without a countdown of its own waits no longer than a backoff does (the visibility
    # timeout is sized to that).
    default_retry_delay = settings.TASK_RETRY_BACKOFF_MAX
    # Bounded by time (TASK_RETRY_WINDOW, in retry() below), not by a count: a count of backoffs
    # adds up to a length nobody chose.
    max_retries = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        if not request.called_directly and not request.is_eager and request.id:
            deliveries = _count_delivery(_delivery_key(request.id, request.retries))
            if deliveries > settings.TASK_MAX_DELIVERIES:
                metrics.incr("celery.task.dropped")
                reason = f"delivered {deliveries - 1} times without finishing"
                logger.error(
                    "dropping task %s[%s]: delivered %d times without finishing (TASK_MAX_DELIVERIES=%d); "
                    "it probably kills its worker. Fix it, then run it again from its dead letter.",
                    self.name,
                    request.id,
                    deliveries - 1,
                    settings.TASK_MAX_DELIVERIES,
                    extra={"task_id": request.id, "task_name": self.name},
                )
                record_dead_letter(self, Reject(reason), args, kwargs, error=f"Reject: {reason}")
                raise Reject(reason, requeue=False)
        return super().__call__(*args, **kwargs)

    def retry(
        self,
        args: Any = None,
        kwargs: Any = None,
        exc: Exception | None = None,
        throw: bool = True,
        eta: Any = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Any:
        request = self.request
        if request.is_eager and exc is not None:
            # No broker to wait in: an eager task (development without a broker) fails at once.
            raise exc
        first_failure = float(request.get(FIRST_FAILURE_HEADER) or time.time())
        left = first_failure + settings.TASK_RETRY_WINDOW - time.time()
        if left <= 0:
            exc = exc or MaxRetriesExceededError(f"retry window of {settings.TASK_RETRY_WINDOW}s spent")
            call_args = request.args if args is None else args
            call_kwargs = request.kwargs if kwargs is None else kwargs
            if record_dead_letter(self, exc, call_args, call_kwargs, error=traceback.format_exc()):
                request.update(core_dead_lettered=True)
                raise exc
            # The dead letter cannot be written either (the database is what is down): failing now
            # would leave the task in a log line only. It stays in the broker and tries again.
            countdown = self.retry_backoff_max
        elif countdown is not None:
            countdown = max(0.0, min(countdown, left))
        options["headers"] = {**(request.headers or {}), FIRST_FAILURE_HEADER: first_failure}
        return super().retry(args, kwargs, exc, throw, eta, countdown, max_retries, **options)

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        if not self.request.get("core_dead_lettered"):
            record_dead_letter(self, exc, args, kwargs, error=str(einfo) if einfo else "")

    def after_return(self, status: str, retval: Any, task_id: str, *args: Any, **kwargs: Any) -> None:
        # Finished (in any state): its delivery count is no longer needed.
        if not self.request.is_eager:
            cache.delete(_delivery_key(task_id, self.request.retries))


def dead_letters_rerun(dead_letters: Iterable[Any]) -> tuple[int, list[str]]:
    """Queue the dead letters' tasks again, each as a new message with a fresh retry window.

    Returns how many were queued and an error line for each that could not be (broker down, a
    task no longer in the code); those stay as they were, to be run again later.
    """
    from config.celery import app

    # The web process imports task modules only as it uses them; the admin needs them all.
    app.loader.import_default_modules()
    queued, problems = 0, []
    for dead_letter in dead_letters:
        task = app.tasks.get(dead_letter.task_name)
        if task is None:
            problems.append(f"{dead_letter}: no task named {dead_letter.task_name} in this code")
            continue
        try:
            result = task.apply_async(args=dead_letter.args, kwargs=dead_letter.kwargs)
        except Exception as error:
            logger.exception("could not queue dead letter %s again", dead_letter)
            problems.append(f"{dead_letter}: could not be queued ({error})")
            continue
        dead_letter.rerun_at = timezone.now()
        dead_letter.rerun_task_id = result.id or ""
        dead_letter.save(update_fields=["rerun_at", "rerun_task_id", "updated_at"])
        queued += 1
    return queued, problems


def house_task(*args: Any, **options: Any) -> Any:
    """`shared_task` with the house base class: use as `@house_task` or `@house_task(bind=True, ...)`."""
    return shared_task(*args, base=HouseTask, **options)


# --- The request id travels with the message -------------------------------------------------

_request_id_tokens: dict[str, Token[str]] = {}


@signals.before_task_publish.connect
def stamp_request_id(headers: dict[str, Any], **kwargs: Any) -> None:
    headers.setdefault(REQUEST_ID_HEADER, current_request_id.get())
    headers.setdefault(PUBLISHED_AT_HEADER, time.time())


@signals.task_prerun.connect
def adopt_request_id(task_id: str, task: Task, **kwargs: Any) -> None:
    request_id = task.request.get(REQUEST_ID_HEADER)
    if request_id == "-":
        # Queued outside a request (beat, a shell): the task's own id ties its lines together.
        request_id = f"task-{task_id}"
    # Eager tasks carry no header and keep the caller's id.
    _request_id_tokens[task_id] = current_request_id.set(request_id or current_request_id.get())


@signals.task_postrun.connect
def drop_request_id(task_id: str, **kwargs: Any) -> None:
    token = _request_id_tokens.pop(task_id, None)
    if token is not None:
        current_request_id.reset(token)


# --- Periodic tasks every site needs (scheduled in CELERY_BEAT_SCHEDULE) ----------------------
# Named as before they moved into this package, so beat's schedule rows, queued messages and dead
# letters still find them.


@house_task(name="apps.core.tasks.clear_expired_sessions")
@once_per_slot(seconds=86_400)
def clear_expired_sessions() -> None:
    """What `manage.py clearsessions` does, daily: delete sessions past their expiry date."""
    engine = import_module(settings.SESSION_ENGINE)
    engine.SessionStore.clear_expired()
    logger.info("expired sessions cleared")


@house_task(name="apps.core.tasks.beat_heartbeat")
def beat_heartbeat() -> None:
    """Record when beat published this task, so /readyz and monitoring can tell beat is alive."""
    if claim_slot("beat_heartbeat", settings.BEAT_HEARTBEAT_INTERVAL):
        record_heartbeat(published_at())


@house_task(name="core.ping")
def ping() -> str:
    """Answers "pong": proves that a worker consumes the queue (operators, the stack tests)."""
    return "pong"
