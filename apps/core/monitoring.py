"""What Munin and the gauge sampler read, each computed when asked: queue depths from the broker,
beat's heartbeat age and roll call, and the dead letters waiting (one indexed COUNT).

Nothing is counted between polls and no thread runs: request and task counts go to statsd
(apps.core.metrics), and Munin takes request rates from nginx's stub_status (see
monitoring/munin/README.md). `snapshot()` is served on /internal/metrics to this host only.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from django.conf import settings

from apps.core import metrics
from apps.core.periodic import beats_running, last_heartbeat

logger = logging.getLogger(__name__)


def record_request(*, view_name: str | None, status_class: str, milliseconds: float) -> None:
    """An answered request to statsd: its time by view and its status class."""
    view = metrics.metric_segment(view_name) if view_name else "unresolved"
    metrics.timing(f"request.time.{view}", milliseconds)
    metrics.incr(f"request.status.{status_class}")


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
    """Seconds since celery beat's last heartbeat; None when none was ever recorded."""
    last = last_heartbeat()
    return None if last is None else max(0.0, time.time() - last)


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
    """Everything the Munin plugins graph from the app, read now from the broker, Redis and the database."""
    age = beat_heartbeat_age()
    return {
        "queues": queue_depths(),
        "beat_heartbeat_age_seconds": None if age is None else round(age, 3),
        "dead_letters": dead_letters_waiting(),
        "beats": beats(),
    }
