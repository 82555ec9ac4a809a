"""The worker and /readyz say when the broker's Redis would lose tasks: evicting, or not persisting."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.urls import reverse

from apps.core.tasks.monitoring import broker_durability_problems
from tests.support.net import free_port
from tests.support.processes import celery, celery_env, stop_process_group
from tests.support.redis_servers import redis_server
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration]

PERSISTENT = ("--appendonly", "yes", "--appendfsync", "everysec")
RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "production.md"


@pytest.fixture
def broker_at(settings):
    def point_at(port: int) -> None:
        settings.CELERY_TASK_ALWAYS_EAGER = False
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/1"

    return point_at


def test_a_broker_that_persists_nothing_is_reported_but_does_not_make_readyz_fail(client, broker_at, db):
    with redis_server() as private_redis:  # --save "" --appendonly no: what a default cache Redis runs
        broker_at(private_redis.port)
        assert broker_durability_problems() == [
            "no persistence (appendonly no, save off): a restart loses every queued task"
        ]
        response = client.get(reverse("readyz"))
    assert response.status_code == 200
    assert response.json()["checks"]["broker_durability"]["ok"] is False


def test_an_evicting_broker_is_reported_even_with_persistence(broker_at):
    with redis_server(*PERSISTENT, "--maxmemory-policy", "allkeys-lru") as private_redis:
        broker_at(private_redis.port)
        problems = broker_durability_problems()
    assert len(problems) == 1
    assert problems[0].startswith("maxmemory-policy is allkeys-lru")


def test_a_broker_run_as_the_runbook_says_passes(client, broker_at, db):
    with redis_server(*PERSISTENT) as private_redis:
        broker_at(private_redis.port)
        assert broker_durability_problems() == []
        assert client.get(reverse("readyz")).json()["checks"]["broker_durability"]["ok"] is True
    # RDB snapshots alone count as persistence too (they lose more on a crash; the runbook says how much).
    with redis_server("--save", "60 1") as private_redis:
        broker_at(private_redis.port)
        assert broker_durability_problems() == []


def test_a_broker_that_refuses_config_get_is_unknown_not_an_error(client, broker_at, db):
    with redis_server("--rename-command", "CONFIG", "") as private_redis:
        broker_at(private_redis.port)
        assert broker_durability_problems() == []
        assert client.get(reverse("readyz")).json()["checks"]["broker_durability"]["ok"] is True


@pytest.mark.django_db(transaction=True)
def test_a_worker_on_a_broker_that_persists_nothing_warns_at_start_up(tmp_path):
    with redis_server() as private_redis:
        env = celery_env(database=settings.DATABASES["default"], redis_port=private_redis.port)
        with celery("worker", env, tmp_path, "--concurrency=1") as worker:
            worker.wait_for_log("the broker may lose tasks: no persistence", timeout=30)


def test_the_runbooks_broker_redis_conf_starts_redis_and_passes(broker_at, tmp_path):
    """The lines the runbook tells an operator to put in redis.conf, pasted as they are."""
    block = re.search(
        r"In `/etc/redis/redis.conf` of the broker's Redis:\n\n```\n(.*?)```", RUNBOOK.read_text(), re.S
    )
    assert block, "the runbook's broker redis.conf block was not found"
    conf = tmp_path / "redis.conf"
    conf.write_text(block.group(1))
    port = free_port()
    binary = shutil.which("redis-server") or "redis-server"
    command = [binary, str(conf), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        client = redis.Redis(port=port, socket_timeout=1)

        def answers() -> bool:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_until(answers, timeout=10, what="redis-server with the runbook's config")
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        broker_at(port)
        assert broker_durability_problems() == []
    finally:
        stop_process_group(process)
