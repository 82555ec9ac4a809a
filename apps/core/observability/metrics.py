"""The one place application code sends metrics through.

Call sites use these functions and never a statsd client directly, so the backend can change
without touching them. Metrics go to statsd over UDP when STATSD_HOST is set, and nowhere
(no socket at all) when it is not. Sending is fire and forget: the address is resolved once per
process, a packet that cannot be sent is dropped, and an unresolvable host is logged once and
switches metrics off, so a missing statsd server never slows or fails a request or a task.

Every name sent here is listed in monitoring/statsd/catalogue.csv; a test keeps the two in step.
"""

from __future__ import annotations

import contextlib
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
_lock = threading.Lock()
# None: not built yet in this process; False: off (no host, or it did not resolve).
_client: StatsClient | bool | None = None


def metric_segment(value: str) -> str:
    """Make `value` one safe segment of a dotted name: Graphite makes every dot a folder."""
    return _UNSAFE.sub("_", value).strip("_") or "unknown"


def _build_client() -> StatsClient | bool:
    host = getattr(settings, "STATSD_HOST", "")
    if not host:
        return False
    port = int(getattr(settings, "STATSD_PORT", 8125))
    prefix = getattr(settings, "STATSD_PREFIX", "") or getattr(settings, "PROJECT_SLUG", "")
    try:
        # StatsClient resolves the address here, once; every packet then goes to that address.
        client = StatsClient(host=host, port=port, prefix=prefix or None)
    except (OSError, UnicodeError) as error:
        logger.warning("statsd host %s:%s cannot be resolved (%s); metrics are off", host, port, error)
        return False
    # A full socket buffer drops the packet instead of blocking the request.
    client._sock.setblocking(False)
    return client


def _get_client() -> StatsClient | None:
    global _client
    client = _client
    if client is None:
        with _lock:
            if _client is None:
                _client = _build_client()
            client = _client
    return client if isinstance(client, StatsClient) else None


def reset() -> None:
    """Forget the client, so the next metric reads the settings again (tests, settings changes)."""
    global _client
    with _lock:
        if isinstance(_client, StatsClient):
            _client.close()
        _client = None


@receiver(setting_changed)
def _statsd_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("STATSD_") or setting == "PROJECT_SLUG":
        reset()


_local = threading.local()


@contextlib.contextmanager
def batch() -> Iterator[None]:
    """Send the metrics recorded inside the block together, in as few packets as fit (one, usually).

    The request middleware wraps each request in one, so a request costs one send, not five.
    """
    client = _get_client()
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
    client = getattr(_local, "pipeline", None) or _get_client()
    if client is None:
        return
    # A metric must never fail its caller: sending is best effort.
    with contextlib.suppress(Exception):
        getattr(client, method)(name, value)


def incr(name: str, value: int = 1) -> None:
    """Count an event, e.g. incr("celery.enqueue.failed")."""
    _send("incr", name, value)


def timing(name: str, milliseconds: float) -> None:
    """Record a duration."""
    _send("timing", name, milliseconds)


def gauge(name: str, value: float) -> None:
    """Record a level sampled at a point in time, e.g. a queue's depth."""
    _send("gauge", name, value)


def enabled() -> bool:
    """Whether metrics go anywhere in this process."""
    return _get_client() is not None
