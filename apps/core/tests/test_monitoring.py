"""/internal/metrics (what Munin reads) and the gauges sampled for statsd."""

import threading
import time
from contextlib import contextmanager

import pytest
from django.urls import reverse
from kombu import Connection, Exchange, Queue

from apps.core.tasks import monitoring
from apps.core.tasks.monitoring import sample_monitoring_gauges
from apps.core.tasks.periodic import record_heartbeat
from config.celery import app
from tests.support.net import closed_port
from tests.support.redis_servers import redis_server

METRICS_PATH = "/internal/metrics"


@pytest.fixture(scope="module")
def broker_port():
    with redis_server() as private_redis:
        yield private_redis.port


@contextmanager
def celery_conf(**overrides):
    """Change the Celery app's configuration (read once from settings, so settings cannot) for a test."""
    saved = {name: app.conf[name] for name in overrides}
    app.conf.update(overrides)
    try:
        yield
    finally:
        app.conf.update(saved)


@pytest.fixture
def redis_broker(broker_port):
    """Tasks go to a private Redis broker that no worker reads, so messages stay queued."""
    url = f"redis://127.0.0.1:{broker_port}/1"
    with Connection(url) as connection:
        connection.default_channel.client.flushdb()
    with celery_conf(broker_url=url, task_always_eager=False):
        yield url


def _redis_cache(location: str, *, timeout: float) -> dict:
    options = {"SOCKET_CONNECT_TIMEOUT": timeout, "SOCKET_TIMEOUT": timeout, "IGNORE_EXCEPTIONS": True}
    return {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": location, "OPTIONS": options}}


def _publish(url: str, *, count: int, priority: int = 0) -> None:
    queue = Queue("celery", Exchange("celery"), routing_key="celery")
    with Connection(url) as connection:
        producer = connection.Producer()
        for number in range(count):
            producer.publish(
                {"n": number},
                exchange=queue.exchange,
                routing_key="celery",
                declare=[queue],
                priority=priority,
            )


def test_internal_metrics_answers_a_local_client_with_every_section(client):
    response = client.get(METRICS_PATH, REMOTE_ADDR="127.0.0.1")

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert set(response.json()) == {"queues", "beat_heartbeat_age_seconds", "dead_letters", "beats"}


def test_internal_metrics_is_not_found_for_a_remote_client(client):
    assert client.get(METRICS_PATH, REMOTE_ADDR="203.0.113.7").status_code == 404


# nginx connects from loopback or over gunicorn's unix socket (an empty address), and always adds
# X-Forwarded-For.
@pytest.mark.parametrize("address", ["127.0.0.1", ""])
@pytest.mark.parametrize("header", ["HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED"])
def test_internal_metrics_is_not_found_through_a_proxy_even_from_this_host(client, address, header):
    response = client.get(METRICS_PATH, REMOTE_ADDR=address, **{header: "203.0.113.7"})
    assert response.status_code == 404


def test_internal_metrics_answers_whatever_the_host_and_https_settings(client, settings):
    settings.ALLOWED_HOSTS = ["example.com"]
    settings.SECURE_SSL_REDIRECT = True

    response = client.get(METRICS_PATH, REMOTE_ADDR="::1", HTTP_HOST="127.0.0.1:8000")

    assert response.status_code == 200


def test_requests_and_polls_start_no_thread_in_the_web_process(client):
    before = set(threading.enumerate())

    statuses = [client.get(reverse("home")).status_code, client.get("/no/such/page").status_code]
    client.get(METRICS_PATH)

    assert statuses == [200, 404]
    assert set(threading.enumerate()) == before


def test_requests_succeed_and_metrics_are_unknown_while_the_cache_redis_is_down(client, settings):
    settings.CACHES = _redis_cache(f"redis://127.0.0.1:{closed_port()}/0", timeout=0.5)

    statuses = [client.get(reverse("home")).status_code for _ in range(3)]
    response = client.get(METRICS_PATH)

    assert statuses == [200, 200, 200]
    assert response.status_code == 200
    assert response.json()["beats"] is None
    assert response.json()["beat_heartbeat_age_seconds"] is None


def test_queue_depth_counts_every_priority_level_of_a_redis_queue(redis_broker):
    _publish(redis_broker, count=2)
    _publish(redis_broker, count=1, priority=9)

    assert monitoring.queue_depths() == {"celery": 3}


def test_queue_depth_of_a_queue_never_declared_is_zero(redis_broker):
    assert monitoring.queue_depths() == {"celery": 0}


def test_queue_depths_are_unknown_when_tasks_run_eagerly():
    with celery_conf(task_always_eager=True):
        assert monitoring.queue_depths() is None


def test_beat_heartbeat_age_is_read_from_the_heartbeat_key(client):
    record_heartbeat(time.time() - 120)

    age = client.get(METRICS_PATH).json()["beat_heartbeat_age_seconds"]

    assert 119 <= age < 130


def test_beat_heartbeat_age_is_null_before_any_heartbeat(client):
    assert client.get(METRICS_PATH).json()["beat_heartbeat_age_seconds"] is None


def test_the_sampler_sends_queue_depth_and_heartbeat_age_gauges(redis_broker, statsd_listener):
    _publish(redis_broker, count=4)
    record_heartbeat(time.time() - 300)

    sample_monitoring_gauges.apply()

    statsd_listener.wait_for(lambda names: "app.celery.beat.heartbeat_age" in names)
    gauges = {name: float(value) for name, value, kind in statsd_listener.metrics() if kind == "g"}
    assert gauges["app.celery.queue.celery.depth"] == 4
    assert 299 <= gauges["app.celery.beat.heartbeat_age"] < 310
