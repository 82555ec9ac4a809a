"""The one place application code sends metrics through.

Call sites use these functions and never a statsd client directly, so the backend can change
without touching them. Until STATSD_HOST is wired in (monitoring), they record nothing.
"""


def incr(name: str, value: int = 1) -> None:
    """Count an event, e.g. incr("celery.enqueue.failed")."""


def timing(name: str, milliseconds: float) -> None:
    """Record a duration."""


def gauge(name: str, value: float) -> None:
    """Record a level sampled at a point in time, e.g. a queue's depth."""
