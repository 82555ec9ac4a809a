"""The migration that stores addresses in lower case, run on rows written before it."""

from importlib import import_module

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("users", "0001_initial")]
AFTER = [("users", "0003_email_lower_case_constraint")]
CaseClash = import_module("apps.users.migrations.0002_lower_case_emails").CaseClash


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def users_before_lower_case():
    """The users table as 0001 left it; migrated back to the latest state afterwards."""
    apps = migrate(BEFORE)
    try:
        yield apps.get_model("users", "User")
    finally:
        migrate(AFTER)


def test_mixed_case_addresses_are_lowered(users_before_lower_case):
    User = users_before_lower_case
    User.objects.create(email="Ada@Example.com", password="!")
    User.objects.create(email="grace@example.com", password="!")

    User = migrate(AFTER).get_model("users", "User")

    assert sorted(User.objects.values_list("email", flat=True)) == ["ada@example.com", "grace@example.com"]


@pytest.mark.skipif(
    connection.vendor == "mysql", reason="MariaDB's case-insensitive collation never stored such a pair"
)
def test_accounts_whose_addresses_differ_only_by_case_stop_the_migration_and_nothing_changes(
    users_before_lower_case,
):
    User = users_before_lower_case
    first = User.objects.create(email="Ada@example.com", password="!")
    second = User.objects.create(email="ada@example.com", password="!")
    User.objects.create(email="Grace@example.com", password="!")

    with pytest.raises(CaseClash, match=rf"ada@example.com \(user ids {first.pk}, {second.pk}\)"):
        migrate(AFTER)

    assert sorted(User.objects.values_list("email", flat=True)) == [
        "Ada@example.com",
        "Grace@example.com",
        "ada@example.com",
    ]
    first.delete()
