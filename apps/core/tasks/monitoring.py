"""What Munin and the gauge sampler read, computed when asked: queue depths from the broker,
beat's heartbeat age and roll call, and the dead letters waiting. Also whether the broker's Redis
keeps the tasks it accepted, which /readyz and a starting worker report.

`snapshot()` is served on /internal/metrics to this host only; `sample_monitoring_gauges`
(scheduled every 30 seconds) sends the same figures to statsd as gauges.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any
from urllib.parse import urlsplit

import redis
from django.conf import settings

from apps.core.data.redis import redis_client
from apps.core.observability import metrics
from apps.core.tasks.periodic import beat_heartbeat_age, beats_running
from apps.core.tasks.queueing import house_task

logger = logging.getLogger(__name__)


def queue_depths() -> dict[str, int] | None:
    """Messages waiting in each of the project's queues (a passive declare: on Redis kombu sums the
    priority lists); None when there is no broker (eager tasks) or it is down."""
    from config.celery import app

    # Celery's own view of its configuration, which is what its producers and workers use.
    if app.conf.task_always_eager or not app.conf.broker_url:
        return None

    depths: dict[str, int] = {}
    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, timeout=settings.HEALTH_CHECK_TIMEOUT)
            for name in [queue.name for queue in app.conf.task_queues or []] or [app.conf.task_default_queue]:
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


def dead_letters_waiting() -> int | None:
    """Tasks that failed for good and were not run again yet; None when the database cannot answer."""
    from apps.core.models import DeadLetter

    try:
        return DeadLetter.objects.filter(rerun_at__isnull=True).count()
    except Exception as error:
        logger.warning("dead letters uncounted: database failed (%s)", error)
        return None


def broker_durability_problems() -> list[str]:
    """Why the Redis broker could lose tasks it accepted: an evicting policy, or no persistence.

    Empty when it keeps them, or when the broker is not Redis (RabbitMQ's queues are durable).
    A server where CONFIG is renamed or disabled (managed Redis) cannot tell: that is reported as
    unknown, not as a problem.
    """
    url = settings.CELERY_BROKER_URL
    if settings.CELERY_TASK_ALWAYS_EAGER or urlsplit(url).scheme not in ("redis", "rediss"):
        return []
    client = redis_client(url)
    try:
        config: dict[str, str] = {}
        for pattern in ("maxmemory-policy", "appendonly", "save"):
            config.update(client.config_get(pattern))  # type: ignore[arg-type]
    except redis.ResponseError:
        logger.info("broker durability unknown: the broker's Redis does not allow CONFIG GET")
        return []
    problems = []
    policy = config.get("maxmemory-policy", "")
    if policy != "noeviction":
        problems.append(f"maxmemory-policy is {policy}: under memory pressure it deletes queued tasks")
    if config.get("appendonly") != "yes" and not config.get("save"):
        problems.append("no persistence (appendonly no, save off): a restart loses every queued task")
    return problems


def snapshot() -> dict[str, Any]:
    """Everything the Munin plugins graph from the app, read now from the broker, Redis and the database."""
    age = beat_heartbeat_age()
    try:
        beats = beats_running()
    except Exception as error:
        logger.warning("beat count unavailable: Redis failed (%s)", error)
        beats = None
    return {
        "queues": queue_depths(),
        "beat_heartbeat_age_seconds": None if age is None else round(age, 3),
        "dead_letters": dead_letters_waiting(),
        "beats": None if beats is None else {"sending": beats.sending, "standby": beats.standby},
    }


# Named as before it moved here, so beat's schedule rows and queued messages still find it.
@house_task(name="apps.core.monitoring_tasks.sample_monitoring_gauges", ignore_result=True)
def sample_monitoring_gauges() -> None:
    depths = queue_depths()
    for queue, depth in (depths or {}).items():
        metrics.gauge(f"celery.queue.{metrics.metric_segment(queue)}.depth", depth)
    age = beat_heartbeat_age()
    if age is not None:
        metrics.gauge("celery.beat.heartbeat_age", round(age, 3))
    dead_letters = dead_letters_waiting()
    if dead_letters is not None:
        metrics.gauge("celery.dead_letters.waiting", dead_letters)
