"""Where the router sends queries. The real streaming replica is in tests/test_read_replicas.py."""

import pytest

from apps.core.data.db_router import PrimaryReplicaRouter, request_routing, use_primary
from apps.users.models import User

router = PrimaryReplicaRouter()


@pytest.fixture(autouse=True)
def _one_replica(settings):
    settings.DATABASE_REPLICAS = ["replica_0"]


def test_code_outside_a_request_reads_from_the_primary():
    # Celery tasks, management commands and the shell never act on data that lags.
    assert router.db_for_read(User) == "default"


def test_a_request_reads_from_a_replica_until_it_writes():
    with request_routing(recent_write=False) as routing:
        assert router.db_for_read(User) == "replica_0"
        assert router.db_for_write(User) == "default"
        assert router.db_for_read(User) == "default"
    assert routing.wrote is True


def test_a_client_that_wrote_recently_reads_from_the_primary():
    with request_routing(recent_write=True):
        assert router.db_for_read(User) == "default"


def test_use_primary_pins_reads_inside_a_request():
    with request_routing(recent_write=False):
        with use_primary():
            assert router.db_for_read(User) == "default"
        assert router.db_for_read(User) == "replica_0"


@pytest.mark.django_db(transaction=True)
def test_reads_inside_a_transaction_go_to_the_primary():
    from django.db import transaction

    with request_routing(recent_write=False), transaction.atomic():
        assert router.db_for_read(User) == "default"


def test_migrations_never_run_on_a_replica():
    assert router.allow_migrate("replica_0", "users") is False
    assert router.allow_migrate("default", "users") is None
