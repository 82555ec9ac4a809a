"""Timestamps from PostgreSQL load through psycopg's C parser and equal what Django's loader gives.

The loader is PostgreSQL's, so on a SQLite or MariaDB run the test starts a private cluster.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.db.utils import ConnectionHandler

from apps.core import db_loaders
from tests.faults.servers import postgres_cluster

TIMESTAMPTZ_OID = 1184


@pytest.fixture(scope="module")
def postgres_settings() -> Iterator[dict[str, Any]]:
    if connection.vendor == "postgresql":
        # The server's maintenance database: it exists whether or not this run made its own yet.
        yield {key: connection.settings_dict[key] for key in ("USER", "HOST", "PORT", "PASSWORD")} | {
            "NAME": "postgres"
        }
        return
    with postgres_cluster() as cluster:
        yield {"NAME": "postgres", "USER": "postgres", "HOST": "127.0.0.1", "PORT": cluster.cluster.port}


@pytest.fixture
def postgres(postgres_settings: dict[str, Any], django_db_blocker: Any) -> Iterator[Any]:
    """A Django PostgreSQL connection of its own, opened as the app opens its connections."""
    handler = ConnectionHandler({"default": {"ENGINE": "django.db.backends.postgresql", **postgres_settings}})
    wrapper = handler["default"]
    with django_db_blocker.unblock():
        try:
            yield wrapper
        finally:
            wrapper.close()


def _load(wrapper: Any, value: str) -> datetime:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT %s::timestamptz", [value])
        return cursor.fetchone()[0]


def test_timestamptz_values_load_through_the_c_parser_as_utc_datetimes(postgres):
    assert db_loaders.c_timestamptz_loader() is not None, "psycopg[binary] is a dependency"

    loaded = _load(postgres, "2026-03-29 03:30:15.123456+02")

    loader = postgres.connection.adapters.get_loader(TIMESTAMPTZ_OID, 0)
    assert loader.__name__ == "FastTimestamptzLoader"
    assert loaded == datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC)
    assert loaded.tzinfo is UTC


def test_a_session_moved_to_another_time_zone_still_loads_the_same_instant(postgres):
    # Raw SQL can change the session's zone behind Django's back. The C parser reads the zone
    # per cursor, so the instant stays right (Django's own loader would relabel it as UTC).
    postgres.ensure_connection()
    postgres.connection.execute("SET TIME ZONE 'America/New_York'")

    loaded = _load(postgres, "2026-07-01 12:00:00+00")

    assert loaded == datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
