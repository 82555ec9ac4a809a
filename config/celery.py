"""The Celery application: configured from Django settings (CELERY_ namespace)."""

import logging
import logging.config
import os
from typing import Any

from celery import Celery, bootsteps, signals
from kombu.asynchronous.timer import Timer

# Like wsgi.py: a worker started without DJANGO_SETTINGS_MODULE runs production settings,
# which refuse to start when their variables are missing, instead of silently running development.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger("config.celery")


@app.on_after_configure.connect
def name_a_broker_for_eager_tasks(sender: Celery, **kwargs: Any) -> None:
    """Eager tasks still go through a producer from the broker pool; with no URL its connection is
    amqp:// without a host, and kombu warns "No hostname was supplied". Its in-memory transport on a
    named host is the same nothing, without the warning."""
    if sender.conf.task_always_eager and not sender.conf.broker_url:
        sender.conf.update(broker_url="memory://localhost/")


# How often the worker's main process sweeps cancelled timers out of its event loop. A sweep costs
# in proportion to the entries it drops, so sweeping often costs no more than rarely.
CANCELLED_TIMERS_SWEEP_SECONDS = 1.0


def drop_cancelled_timers(timer: Timer) -> None:
    """Rebuild the timer's schedule without its cancelled entries.

    The prefork pool arms a time-limit timer in the main process for every task it starts and
    cancels it when the task ends, but kombu's Timer keeps a cancelled entry until it would have
    fired (CELERY_TASK_SOFT_TIME_LIMIT later): the main process grows by one entry per task run
    in that window (celery issues #1129, #5200). A cancelled entry is never run, so dropping it
    early changes nothing but memory.
    """
    # `queue` is a copy sorted by due time, which is already a valid heap: re-entering it in
    # order costs no sifting.
    events = timer.queue
    live = [event for event in events if not event.entry.canceled]
    if len(live) == len(events):
        return
    timer.clear()
    for event in live:
        timer.enter_at(event.entry, event.eta, event.priority)


class DropCancelledTimers(bootsteps.StartStopStep):
    """Sweeps cancelled time-limit timers out of the worker's event loop (see drop_cancelled_timers)."""

    sweep: Any = None

    def include_if(self, consumer: Any) -> bool:
        # Only the event loop (prefork on Redis or RabbitMQ) arms time limits on this timer.
        return consumer.hub is not None

    def start(self, consumer: Any) -> None:
        self.sweep = consumer.timer.call_repeatedly(
            CANCELLED_TIMERS_SWEEP_SECONDS, drop_cancelled_timers, (consumer.timer,)
        )

    def stop(self, consumer: Any) -> None:
        if self.sweep is not None:
            self.sweep.cancel()
            self.sweep = None

    shutdown = stop


app.steps["consumer"].add(DropCancelledTimers)


@signals.setup_logging.connect
def use_django_logging(**kwargs: Any) -> None:
    """Workers and beat log through Django's LOGGING: same format, request ids, JSON in production."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@signals.worker_ready.connect
@signals.beat_init.connect
def log_settings_module(sender: Any = None, **kwargs: Any) -> None:
    """The first line an operator looks for: which settings this process really runs."""
    from django.conf import settings

    logger.info(
        "celery running with DJANGO_SETTINGS_MODULE=%s, broker %s, default queue %r",
        os.environ["DJANGO_SETTINGS_MODULE"],
        app.connection_for_read().as_uri(),
        settings.CELERY_TASK_DEFAULT_QUEUE,
    )
    if "django_redis" not in settings.CACHES["default"]["BACKEND"]:
        logger.warning(
            "the cache is files on this host (no REDIS_URL or CACHE_REDIS_URL): beat's lock and the "
            "duplicate guard cannot work across hosts, and a second beat would send too"
        )


@signals.worker_ready.connect
def warn_if_the_broker_may_lose_tasks(sender: Any = None, **kwargs: Any) -> None:
    """A Redis broker that evicts or persists nothing loses queued tasks on memory pressure or a
    restart, silently; the worker says so once, at start-up (and /readyz reports it)."""
    from apps.core.tasks.monitoring import broker_durability_problems

    try:
        problems = broker_durability_problems()
    except Exception as error:  # the broker being down is the consumer's business, not this check's
        logger.warning("broker durability unknown: %s", error)
        return
    for problem in problems:
        logger.warning(
            "the broker may lose tasks: %s (see docs/production.md, Redis for the broker)", problem
        )
