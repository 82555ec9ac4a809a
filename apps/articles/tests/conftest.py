import pytest
from rest_framework.test import APIClient

from apps.articles import autocomplete


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
