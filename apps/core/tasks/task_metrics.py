"""Per-task metrics from Celery's signals: runtime, and success, failure and retry counts.

Connected from CoreConfig.ready(), so every process that loads Django (worker, beat, web,
eager tasks in tests) reports the tasks it runs, whatever app defines them.
"""

from __future__ import annotations

import time
from typing import Any

from celery import signals

from apps.core.observability import metrics

# Start times by task id; a task runs in one process, so its prerun and postrun meet here.
_started: dict[str, float] = {}


def _name(task: Any) -> str:
    return metrics.metric_segment(getattr(task, "name", None) or "unknown")


def _on_prerun(*, task_id: str, **kwargs: Any) -> None:
    _started[task_id] = time.perf_counter()


def _on_postrun(*, task_id: str, task: Any, **kwargs: Any) -> None:
    started = _started.pop(task_id, None)
    if started is not None:
        metrics.timing(f"celery.task.{_name(task)}.runtime", (time.perf_counter() - started) * 1000)


# Each name spelled out in full, so that grepping for a catalogued metric finds where it is sent.
def _on_success(*, sender: Any, **kwargs: Any) -> None:
    metrics.incr(f"celery.task.{_name(sender)}.succeeded")


def _on_failure(*, sender: Any, **kwargs: Any) -> None:
    metrics.incr(f"celery.task.{_name(sender)}.failed")


def _on_retry(*, sender: Any, **kwargs: Any) -> None:
    metrics.incr(f"celery.task.{_name(sender)}.retried")


def connect() -> None:
    # weak=False: the receivers are module functions that must live as long as the process.
    signals.task_prerun.connect(_on_prerun, weak=False, dispatch_uid="keel.metrics.prerun")
    signals.task_postrun.connect(_on_postrun, weak=False, dispatch_uid="keel.metrics.postrun")
    signals.task_success.connect(_on_success, weak=False, dispatch_uid="keel.metrics.success")
    signals.task_failure.connect(_on_failure, weak=False, dispatch_uid="keel.metrics.failure")
    signals.task_retry.connect(_on_retry, weak=False, dispatch_uid="keel.metrics.retry")
