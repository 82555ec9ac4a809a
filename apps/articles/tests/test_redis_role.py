"""Autocomplete's Redis role: database 2 of REDIS_URL unless AUTOCOMPLETE_REDIS_URL names another."""

from tests.support.processes import settings_in_a_fresh_process


def test_autocomplete_defaults_to_database_2_of_redis_url():
    read = settings_in_a_fresh_process(
        "settings.AUTOCOMPLETE_REDIS_URL", REDIS_URL="redis://redis.internal:6379"
    )
    assert read == "redis://redis.internal:6379/2"


def test_autocomplete_redis_url_names_its_own_server():
    url = "redis://autocomplete.internal:6379/5"
    read = settings_in_a_fresh_process(
        "settings.AUTOCOMPLETE_REDIS_URL", REDIS_URL="redis://redis.internal:6379", AUTOCOMPLETE_REDIS_URL=url
    )
    assert read == url
