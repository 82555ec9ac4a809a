"""The Celery tests' own fixture; the private Redis, the log folder and the test database's
settings are the suite's (tests/support/fixtures.py)."""

import pytest
import redis


@pytest.fixture(scope="module")
def effects(redis_port: int) -> redis.Redis:
    """Where tests/celery/tasks.py records what the worker did."""
    return redis.Redis(port=redis_port, db=2)
