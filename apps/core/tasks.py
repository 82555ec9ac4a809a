"""How Keel queues work: after the data is committed, and never failing the caller."""

import logging
from functools import partial
from typing import Any

from celery import Task, shared_task
from django.db import transaction

from apps.core import metrics

logger = logging.getLogger(__name__)


def _send(task: Task, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        task.apply_async(args=args, kwargs=kwargs)
    except Exception:
        metrics.incr("celery.enqueue.failed")
        # The data is committed; a periodic sweep finds what this message would have done.
        logger.exception("could not queue task %s; a periodic sweep will pick the work up", task.name)


def enqueue(task: Task, *args: Any, **kwargs: Any) -> None:
    """Queue `task` once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(partial(_send, task, args, kwargs))


@shared_task(name="core.ping")
def ping() -> str:
    """Answers "pong": proves that a worker consumes the queue (operators, the stack tests)."""
    return "pong"
