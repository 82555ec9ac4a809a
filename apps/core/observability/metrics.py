"""The one place application code sends metrics through.

Metrics go to statsd over UDP when STATSD_HOST is set, and nowhere (no socket at all) when it is
not. Sending is fire and forget: the address is resolved once per process, a packet that cannot be
sent is dropped, and an unresolvable host is logged once and switches metrics off, so a missing
statsd server never slows or fails a request or a task.

Every name sent here is listed in monitoring/statsd/catalogue.csv; a test keeps the two in step.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import threading
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from statsd import StatsClient

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def metric_segment(value: str) -> str:
    """Make `value` one safe segment of a dotted name: Graphite makes every dot a folder."""
    return _UNSAFE.sub("_", value).strip("_") or "unknown"


@functools.cache
def _client() -> StatsClient | None:
    """The process's statsd client, or None when metrics are off."""
    if not settings.STATSD_HOST:
        return None
    try:
        # StatsClient resolves the address here, once; every packet then goes to that address.
        client = StatsClient(
            host=settings.STATSD_HOST,
            port=settings.STATSD_PORT,
            prefix=settings.STATSD_PREFIX or settings.PROJECT_SLUG or None,
        )
    except (OSError, UnicodeError) as error:
        logger.warning("statsd host %s cannot be resolved (%s); metrics are off", settings.STATSD_HOST, error)
        return None
    # A full socket buffer drops the packet instead of blocking the request.
    client._sock.setblocking(False)
    return client


@receiver(setting_changed)
def _statsd_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("STATSD_") or setting == "PROJECT_SLUG":
        _client.cache_clear()


_local = threading.local()


@contextlib.contextmanager
def batch() -> Iterator[None]:
    """Send the metrics recorded inside the block together, in as few packets as fit (one, usually).

    The request middleware wraps each request in one, so a request costs one send, not five.
    """
    client = _client()
    if client is None or getattr(_local, "pipeline", None) is not None:
        yield
        return
    _local.pipeline = client.pipeline()
    try:
        yield
    finally:
        pipeline, _local.pipeline = _local.pipeline, None
        with contextlib.suppress(Exception):
            pipeline.send()


def _send(method: str, name: str, value: float) -> None:
    client = getattr(_local, "pipeline", None) or _client()
    if client is None:
        return
    # A metric must never fail its caller: sending is best effort.
    with contextlib.suppress(Exception):
        getattr(client, method)(name, value)


def incr(name: str, value: int = 1) -> None:
    """Count an event, e.g. incr("celery.enqueue.failed")."""
    _send("incr", name, value)


def timing(name: str, milliseconds: float) -> None:
    _send("timing", name, milliseconds)


def gauge(name: str, value: float) -> None:
    """Record a level sampled at a point in time, e.g. a queue's depth."""
    _send("gauge", name, value)


def enabled() -> bool:
    """Whether metrics go anywhere in this process."""
    return _client() is not None
