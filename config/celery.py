"""The Celery application: configured from Django settings (CELERY_ namespace)."""

import logging
import logging.config
import os
from typing import Any

from celery import Celery, signals

# Like wsgi.py: a worker started without DJANGO_SETTINGS_MODULE runs production settings,
# which refuse to start when their variables are missing, instead of silently running development.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger("config.celery")


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
    if "LocMemCache" in settings.CACHES["default"]["BACKEND"]:
        logger.warning(
            "the cache is private to each process (no REDIS_URL or CACHE_REDIS_URL): beat's heartbeat, "
            "the once-per-slot lock and the redelivery bound cannot work across processes"
        )


@signals.worker_ready.connect
def warn_if_the_broker_may_lose_tasks(sender: Any = None, **kwargs: Any) -> None:
    """A Redis broker that evicts or persists nothing loses queued tasks on memory pressure or a
    restart, silently; the worker says so once, at start-up (and /readyz reports it)."""
    from apps.core.health import broker_durability_problems

    try:
        problems = broker_durability_problems()
    except Exception as error:  # the broker being down is the consumer's business, not this check's
        logger.warning("broker durability unknown: %s", error)
        return
    for problem in problems:
        logger.warning("the broker may lose tasks: %s (see deploy/README.md, the broker's Redis)", problem)
