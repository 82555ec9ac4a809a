"""Fixtures of the real-worker tests: a private Redis per module and the test database's settings."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings

from tests.processes import redis_server


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    """This module's own redis-server: other runs' workers on the machine never see its tasks."""
    with redis_server() as port:
        yield port


@pytest.fixture(scope="module")
def effects(redis_port: int) -> redis.Redis:
    """Where tests/celery/tasks.py records what the worker did."""
    return redis.Redis(port=redis_port, db=2)


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("celery-logs")


@pytest.fixture(scope="module")
def database(django_db_setup: None) -> dict[str, Any]:
    """The test database (created by pytest-django), which the worker processes share."""
    return dict(settings.DATABASES["default"])
