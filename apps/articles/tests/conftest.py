import pytest
from rest_framework.test import APIClient

from apps.articles import autocomplete

# The real-worker fixtures (private Redis, test database for the worker) are the Celery tests'.
from tests.celery.conftest import database, log_dir, redis_port  # noqa: F401


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture(autouse=True)
def _empty_autocomplete_index():
    """Each test starts with an empty index (keys carry this run's prefix)."""
    client = autocomplete.client()
    if client is not None:
        client.delete(*autocomplete._keys())
    yield
    if client is not None:
        client.delete(*autocomplete._keys())
