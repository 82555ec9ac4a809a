"""Suite-wide fixtures. The suite needs the real PostgreSQL and Redis; it stops at once if they are down."""

import socket
from urllib.parse import urlsplit

import pytest
from django.conf import settings


def _unreachable(url: str, default_port: int) -> str | None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as error:
        return f"{parts.scheme}://{host}:{port} ({error})"
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    database = settings.DATABASES["default"]
    problems = []
    if database["ENGINE"] != "django.db.backends.sqlite3":
        problem = _unreachable(f"db://{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}", 5432)
        if problem:
            problems.append(f"database unreachable at {problem}; set DATABASE_URL")
    problem = _unreachable(settings.REDIS_URL, 6379)
    if problem:
        problems.append(f"Redis unreachable at {problem}; set REDIS_URL")
    if problems:
        pytest.exit("The test suite needs real services: " + "; ".join(problems), returncode=3)


@pytest.fixture(autouse=True)
def _isolated_cache():
    """Every test starts with an empty cache (only this run's keys: they carry its prefix)."""
    from django.core.cache import cache

    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("*")
    else:
        cache.clear()


@pytest.fixture
def statsd_listener(settings):
    """A real UDP listener, and the app's metrics pointed at it (prefix `keel`)."""
    from tests.helpers import StatsdListener

    listener = StatsdListener()
    settings.STATSD_HOST = "127.0.0.1"
    settings.STATSD_PORT = listener.port
    settings.STATSD_PREFIX = "keel"
    try:
        yield listener
    finally:
        listener.close()
