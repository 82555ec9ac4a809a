"""How Keel queues and runs work: after the data is committed, never failing the caller.

The house conventions for a task, which `@keel_task` wires in:

- it takes ids, not objects (the row may have changed by the time it runs: read it fresh);
- it is idempotent (late acks mean it can be delivered twice: make the second run a no-op);
- transient errors (database, Redis, broker, network) are retried with exponential backoff and
  jitter, at most TASK_MAX_RETRIES times, never waiting more than TASK_RETRY_BACKOFF_MAX;
- a message that keeps killing its worker is dropped after TASK_MAX_DELIVERIES deliveries;
- its log lines carry the request id of the request that queued it.

    @keel_task
    def index_article_title(article_id: int) -> None:
        article = Article.objects.filter(pk=article_id).first()
        if article is None:
            return  # deleted since: nothing to do
        ...

Queue it with `enqueue(index_article_title, article.pk)` from the service that wrote the data.
"""

from __future__ import annotations

import logging
import time
from contextvars import Token
from functools import partial
from importlib import import_module
from typing import Any

import kombu.exceptions
import redis.exceptions
from celery import Task, shared_task, signals
from celery.exceptions import Reject
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.utils import InterfaceError, OperationalError

from apps.core import metrics
from apps.core.periodic import PUBLISHED_AT_HEADER, claim_slot, once_per_slot, published_at, record_heartbeat
from apps.core.request_id import current_request_id

logger = logging.getLogger(__name__)

# The header that carries the queuing request's id to the worker.
REQUEST_ID_HEADER = "keel_request_id"

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

    Never raises for a broker outage, and gives up within about a second (see
    CELERY_TASK_PUBLISH_RETRY_POLICY), so the request that queues carries on.
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


class KeelTask(Task):
    """The base of every Keel task: retries transient errors and bounds redeliveries."""

    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = True
    retry_backoff_max = settings.TASK_RETRY_BACKOFF_MAX
    retry_jitter = True
    max_retries = settings.TASK_MAX_RETRIES

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        if not request.called_directly and not request.is_eager and request.id:
            deliveries = _count_delivery(_delivery_key(request.id, request.retries))
            if deliveries > settings.TASK_MAX_DELIVERIES:
                metrics.incr("celery.task.dropped")
                logger.error(
                    "dropping task %s[%s]: delivered %d times without finishing (TASK_MAX_DELIVERIES=%d); "
                    "it probably kills its worker. Fix it, then queue the work again.",
                    self.name,
                    request.id,
                    deliveries - 1,
                    settings.TASK_MAX_DELIVERIES,
                    extra={"task_id": request.id, "task_name": self.name},
                )
                raise Reject(f"delivered {deliveries - 1} times without finishing", requeue=False)
        return super().__call__(*args, **kwargs)

    def after_return(self, status: str, retval: Any, task_id: str, *args: Any, **kwargs: Any) -> None:
        # Finished (in any state): its delivery count is no longer needed.
        if not self.request.is_eager:
            cache.delete(_delivery_key(task_id, self.request.retries))


def keel_task(*args: Any, **options: Any) -> Any:
    """`shared_task` with Keel's base class: use as `@keel_task` or `@keel_task(bind=True, ...)`."""
    return shared_task(*args, base=KeelTask, **options)


# --- The request id travels with the message -------------------------------------------------

_request_id_tokens: dict[str, Token[str]] = {}


@signals.before_task_publish.connect
def stamp_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    if headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, current_request_id.get())
        headers.setdefault(PUBLISHED_AT_HEADER, time.time())


@signals.task_prerun.connect
def adopt_request_id(task_id: str | None = None, task: Task | None = None, **kwargs: Any) -> None:
    if task_id is None or task is None:
        return
    request_id = task.request.get(REQUEST_ID_HEADER)
    if request_id == "-":
        # Queued outside a request (beat, a shell): the task's own id ties its lines together.
        request_id = f"task-{task_id}"
    # Eager tasks carry no header and keep the caller's id.
    _request_id_tokens[task_id] = current_request_id.set(request_id or current_request_id.get())


@signals.task_postrun.connect
def drop_request_id(task_id: str | None = None, **kwargs: Any) -> None:
    token = _request_id_tokens.pop(task_id or "", None)
    if token is not None:
        current_request_id.reset(token)


# --- Periodic tasks every site needs (scheduled in CELERY_BEAT_SCHEDULE) ----------------------


@keel_task
@once_per_slot(seconds=86_400)
def clear_expired_sessions() -> None:
    """What `manage.py clearsessions` does, daily: delete sessions past their expiry date."""
    engine = import_module(settings.SESSION_ENGINE)
    engine.SessionStore.clear_expired()
    logger.info("expired sessions cleared")


@keel_task
def beat_heartbeat() -> None:
    """Record when beat published this task, so /readyz and monitoring can tell beat is alive."""
    if claim_slot("beat_heartbeat", settings.BEAT_HEARTBEAT_INTERVAL):
        record_heartbeat(published_at())


@shared_task(name="core.ping")
def ping() -> str:
    """Answers "pong": proves that a worker consumes the queue (operators, the stack tests)."""
    return "pong"
