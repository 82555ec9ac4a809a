"""One suite, three databases: what each engine is configured with, and what must hold on all."""

import pytest

from apps.users.models import User
from apps.users.tests.factories import UserFactory
from tests.support.processes import settings_in_a_fresh_process


def database_settings(url: str, **env: str) -> dict:
    """The default database's settings as a fresh process with this environment reads them."""
    return settings_in_a_fresh_process(
        "{k: settings.DATABASES['default'].get(k) for k in ('ENGINE', 'OPTIONS', 'TEST', 'CONN_MAX_AGE')}",
        DATABASE_URL=url,
        **env,
    )


def test_mariadb_connections_use_utf8mb4_strict_mode_and_a_connect_timeout():
    database = database_settings("mysql://root@127.0.0.1:3306/app", DATABASE_CONNECT_TIMEOUT="3")
    assert database["ENGINE"] == "django.db.backends.mysql"
    assert database["OPTIONS"] == {
        "charset": "utf8mb4",
        "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
        "connect_timeout": 3,
    }
    assert database["TEST"]["CHARSET"] == "utf8mb4"


def test_sqlite_writers_wait_for_the_lock_instead_of_failing_at_once():
    database = database_settings("sqlite:////tmp/app.sqlite3", DATABASE_SQLITE_TIMEOUT="7")
    assert database["OPTIONS"] == {"timeout": 7, "transaction_mode": "IMMEDIATE"}


def test_pool_and_statement_timeout_apply_to_postgresql_only():
    # psycopg's pool and statement_timeout have no equivalent in Django's MySQL and SQLite backends:
    # there the setting degrades to plain connections closed after each request.
    mariadb = database_settings("mysql://root@127.0.0.1:3306/app", DATABASE_POOL="true")
    assert "pool" not in mariadb["OPTIONS"]
    assert "options" not in mariadb["OPTIONS"]
    assert mariadb["CONN_MAX_AGE"] == 0
    postgres = database_settings("postgres://postgres@127.0.0.1:5432/app", DATABASE_POOL="true")
    assert postgres["OPTIONS"]["pool"]["max_size"] == 10
    assert postgres["OPTIONS"]["options"] == "-c statement_timeout=30000"


@pytest.mark.django_db
def test_four_byte_characters_survive_a_round_trip_through_the_database():
    # MySQL's 3-byte "utf8" would refuse this (strict mode) or mangle it; utf8mb4 keeps it.
    UserFactory(email="emoji@example.com", first_name="Zoë 🚀 漢字")
    assert User.objects.get(email="emoji@example.com").first_name == "Zoë 🚀 漢字"
