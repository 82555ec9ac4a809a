"""psycopg's C parser for PostgreSQL timestamps, in place of the pure-Python one Django registers.

With USE_TZ, Django's PostgreSQL backend loads every `timestamptz` value through a Python subclass
of psycopg's Python loader, so the C parser that psycopg[binary] ships is never used: a page of 20
articles with their authors parsed 120 timestamps in Python, the largest single cost of an
uncached API list. Django sets every connection's time zone to its own (UTC), and psycopg's C
loader returns values in the connection's time zone, so the result is the same datetime.
"""

from datetime import tzinfo
from functools import cache
from typing import Any

from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created


def c_timestamptz_loader() -> type | None:
    """psycopg's C timestamptz loader class, or None without psycopg 3's C implementation."""
    try:
        import psycopg
        from psycopg.pq import Format
    except ImportError:
        return None
    if psycopg.pq.__impl__ not in {"binary", "c"}:
        return None
    loader = psycopg.adapters.get_loader(psycopg.adapters.types["timestamptz"].oid, Format.TEXT)
    # Without the C implementation the global map holds the same Python loader Django subclasses.
    return (
        loader
        if loader is not None and loader.__module__.startswith(("psycopg_binary", "psycopg_c"))
        else None
    )


_C_LOADER = c_timestamptz_loader()


@cache
def _fast_loader_class(zone: tzinfo) -> type:
    """The loader class for connections in `zone`: one per zone, not one per new connection."""
    from psycopg.adapt import Loader

    class FastTimestamptzLoader(Loader):
        # Django's cursor() compares this with the connection's zone before trusting the loader.
        timezone = zone

        def __init__(self, oid: int, context: Any = None) -> None:
            super().__init__(oid, context)
            self._load = _C_LOADER(oid, context).load  # type: ignore[misc]

        def load(self, data: Any) -> Any:
            return self._load(data)

    return FastTimestamptzLoader


def use_c_timestamptz_loader(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if _C_LOADER is None or connection.vendor != "postgresql" or not settings.USE_TZ:
        return
    zone = connection.timezone
    # The C loader answers in the connection's zone; Django has just set it to `zone`.
    if connection.connection.info.timezone != zone:
        return
    connection.connection.adapters.register_loader("timestamptz", _fast_loader_class(zone))


def connect() -> None:
    connection_created.connect(use_c_timestamptz_loader, dispatch_uid="keel.c_timestamptz_loader")
