import pytest
from rest_framework.test import APIClient

from apps.articles import autocomplete


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture(autouse=True)
def _empty_autocomplete_index():
    """Each test starts with an empty index, built (its marker set); keys carry this run's prefix."""
    client = autocomplete.client()
    keys = [*autocomplete._keys(), *autocomplete._marker_keys()]
    if client is not None:
        client.delete(*keys)
        client.set(autocomplete._marker_keys()[0], 0)
    yield
    if client is not None:
        client.delete(*keys)
