"""Fixtures any test may ask for, wherever it lives (tests/ or apps/<name>/tests/), and the fault
report: what each fault test broke, what the user saw and what was lost, printed at the end of
any run that ran a test marked `faults`."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.support.net import StatsdListener
from tests.support.redis_servers import redis_server

# The production stack and its private database and Redis.
from tests.support.stack import stack, stack_database, stack_redis

__all__ = ["database", "log_dir", "redis_port", "stack", "stack_database", "stack_redis", "statsd_listener"]


@pytest.fixture(autouse=True)
def _isolated_cache():
    """Every test starts with empty caches (only this run's keys: they carry its prefix)."""
    from django.core.cache import caches

    for cache in caches.all():
        if hasattr(cache, "delete_pattern"):
            cache.delete_pattern("*")
        else:
            cache.clear()


@pytest.fixture
def statsd_listener(settings):
    """A real UDP listener, and the app's metrics pointed at it (prefix `app`)."""
    listener = StatsdListener()
    settings.STATSD_HOST = "127.0.0.1"
    settings.STATSD_PORT = listener.port
    settings.STATSD_PREFIX = "app"
    try:
        yield listener
    finally:
        listener.close()


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    """This module's own redis-server: other runs' workers on the machine never see its tasks."""
    with redis_server() as server:
        yield server.port


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this module's workers, beats and servers write their logs."""
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="module")
def database(django_db_setup: None) -> dict[str, Any]:
    """The test database (created by pytest-django), which worker processes share."""
    return dict(settings.DATABASES["default"])


_statements: dict[str, str] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("faults") is not None and isinstance(item, pytest.Function):
            _statements[item.nodeid] = inspect.cleandoc(item.function.__doc__ or "")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    outcomes: dict[str, str] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            if nodeid in _statements and outcomes.get(nodeid) in (None, "passed"):
                outcomes[nodeid] = outcome.upper()
    if not outcomes:
        return
    terminalreporter.section("fault report")
    for nodeid, outcome in outcomes.items():
        terminalreporter.write_line(f"{outcome}  {nodeid}")
        statement = _statements[nodeid] or "(no statement: every fault test must say what it broke)"
        for line in statement.splitlines():
            terminalreporter.write_line(f"    {line}")
