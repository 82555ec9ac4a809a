"""The periodic task that samples the gauges statsd cannot see pushed: queue depths, beat's age,
dead letters waiting.

Scheduled by beat every 30 seconds (CELERY_BEAT_SCHEDULE, "sample-monitoring-gauges"). Safe to
run twice: it only reads and reports.
"""

from __future__ import annotations

from celery import shared_task

from apps.core import metrics, monitoring


@shared_task(ignore_result=True)
def sample_monitoring_gauges() -> None:
    depths = monitoring.queue_depths()
    for queue, depth in (depths or {}).items():
        metrics.gauge(f"celery.queue.{metrics.metric_segment(queue)}.depth", depth)
    age = monitoring.beat_heartbeat_age()
    if age is not None:
        metrics.gauge("celery.beat.heartbeat_age", round(age, 3))
    dead_letters = monitoring.dead_letters_waiting()
    if dead_letters is not None:
        metrics.gauge("celery.dead_letters.waiting", dead_letters)
