"""The worker and /readyz say when the broker's Redis would lose tasks: evicting, or not persisting."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse

from apps.core.health import broker_durability_problems
from tests.processes import celery, celery_env, redis_server

pytestmark = [pytest.mark.integration]

PERSISTENT = ("--appendonly", "yes", "--appendfsync", "everysec")


@pytest.fixture
def broker_at(settings):
    def point_at(port: int) -> None:
        settings.CELERY_TASK_ALWAYS_EAGER = False
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/1"

    return point_at


def test_a_broker_that_persists_nothing_is_reported_but_does_not_make_readyz_fail(client, broker_at, db):
    with redis_server() as port:  # --save "" --appendonly no: what a default cache Redis runs
        broker_at(port)
        assert broker_durability_problems() == [
            "no persistence (appendonly no, save off): a restart loses every queued task"
        ]
        response = client.get(reverse("readyz"))
    assert response.status_code == 200
    assert response.json()["checks"]["broker_durability"]["ok"] is False


def test_an_evicting_broker_is_reported_even_with_persistence(broker_at):
    with redis_server(*PERSISTENT, "--maxmemory-policy", "allkeys-lru") as port:
        broker_at(port)
        problems = broker_durability_problems()
    assert len(problems) == 1
    assert problems[0].startswith("maxmemory-policy is allkeys-lru")


def test_a_broker_run_as_the_runbook_says_passes(client, broker_at, db):
    with redis_server(*PERSISTENT) as port:
        broker_at(port)
        assert broker_durability_problems() == []
        assert client.get(reverse("readyz")).json()["checks"]["broker_durability"]["ok"] is True
    # RDB snapshots alone count as persistence too (they lose more on a crash; the runbook says how much).
    with redis_server("--save", "60 1") as port:
        broker_at(port)
        assert broker_durability_problems() == []


def test_a_broker_that_refuses_config_get_is_unknown_not_an_error(client, broker_at, db):
    with redis_server("--rename-command", "CONFIG", "") as port:
        broker_at(port)
        assert broker_durability_problems() == []
        assert client.get(reverse("readyz")).json()["checks"]["broker_durability"]["ok"] is True


@pytest.mark.django_db(transaction=True)
def test_a_worker_on_a_broker_that_persists_nothing_warns_at_start_up(tmp_path):
    with redis_server() as port:
        env = celery_env(database=settings.DATABASES["default"], redis_port=port)
        with celery("worker", env, tmp_path, "--concurrency=1") as worker:
            worker.wait_for_log("the broker may lose tasks: no persistence", timeout=30)
