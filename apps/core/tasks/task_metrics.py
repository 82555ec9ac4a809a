"""Per-task metrics from Celery's signals: runtime, and success, failure and retry counts.

Imported by CoreConfig.ready(), so every process that loads Django (worker, beat, web, eager
tasks in tests) reports the tasks it runs, whatever app defines them.
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


@signals.task_prerun.connect
def _on_prerun(*, task_id: str, **kwargs: Any) -> None:
    _started[task_id] = time.perf_counter()


@signals.task_postrun.connect
def _on_postrun(*, task_id: str, task: Any, **kwargs: Any) -> None:
    started = _started.pop(task_id, None)
    if started is not None:
        metrics.timing(f"celery.task.{_name(task)}.runtime", (time.perf_counter() - started) * 1000)


# Each name spelled out in full, so that grepping for a catalogued metric finds where it is sent.
@signals.task_success.connect
def _on_success(*, sender: Any, **kwargs: Any) -> None:
    metrics.incr(f"celery.task.{_name(sender)}.succeeded")


@signals.task_failure.connect
def _on_failure(*, sender: Any, **kwargs: Any) -> None:
    metrics.incr(f"celery.task.{_name(sender)}.failed")


@signals.task_retry.connect
def _on_retry(*, sender: Any, **kwargs: Any) -> None:
    metrics.incr(f"celery.task.{_name(sender)}.retried")
