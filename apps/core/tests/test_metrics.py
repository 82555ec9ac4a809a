"""statsd emission in-process: what a request, a task and the cache send, and what a dead statsd costs."""

import logging

import pytest
from django.core.cache import cache
from django.urls import reverse

from apps.core.observability import metrics
from apps.core.tasks.monitoring import sample_monitoring_gauges
from apps.users.tests.factories import UserFactory
from tests.support.net import StatsdListener, closed_port
from tests.support.waiting import wait_until


def _received(listener: StatsdListener, name: str, count: int = 1) -> list[tuple[str, str]]:
    listener.wait_for(lambda names: name in names, timeout=5)
    return [(value, kind) for received, value, kind in listener.metrics() if received == name]


def _counter_totals(listener: StatsdListener, names: dict[str, int]) -> dict[str, int]:
    totals = dict.fromkeys(names, 0)
    for name, value, _ in listener.metrics():
        if name in totals:
            totals[name] += int(value)
    return totals


@pytest.mark.django_db
def test_a_request_sends_its_view_timing_status_class_and_database_queries(client, statsd_listener):
    client.force_login(UserFactory())
    statsd_listener.clear()

    response = client.get(reverse("v1:users:me"))

    assert response.status_code == 200
    [(milliseconds, kind)] = _received(statsd_listener, "app.request.time.v1_users_me")
    assert kind == "ms"
    assert float(milliseconds) > 0
    assert _received(statsd_listener, "app.request.status.2xx") == [("1", "c")]
    [(queries, kind)] = _received(statsd_listener, "app.request.db.queries")
    assert kind == "c"
    assert int(queries) >= 1  # the session's user is loaded from the database
    [(db_milliseconds, kind)] = _received(statsd_listener, "app.request.db.time")
    assert kind == "ms"
    assert 0 < float(db_milliseconds) <= float(milliseconds)


@pytest.mark.django_db
def test_a_request_sends_all_its_metrics_in_one_packet(client, statsd_listener):
    client.force_login(UserFactory())
    statsd_listener.clear()

    client.get(reverse("v1:users:me"))

    statsd_listener.wait_for(lambda received: "app.request.db.time" in received, timeout=5)
    # A packet the login sent may still arrive after clear(): the request's own are what count.
    request_packets = [names for names in statsd_listener.packets if "app.request.db.time" in names]
    assert len(request_packets) == 1
    assert {
        "app.request.time.v1_users_me",
        "app.request.status.2xx",
        "app.cache.get.hit",
        "app.request.db.queries",
    } <= request_packets[0]


def test_a_request_no_route_matched_is_timed_as_unresolved_and_counted_4xx(client, statsd_listener):
    response = client.get("/no/such/page")

    assert response.status_code == 404
    assert _received(statsd_listener, "app.request.time.unresolved")
    assert _received(statsd_listener, "app.request.status.4xx") == [("1", "c")]


def test_cache_reads_are_counted_as_hits_and_misses(statsd_listener):
    assert cache.get("monitoring-test-key") is None
    cache.set("monitoring-test-key", "value")
    assert cache.get("monitoring-test-key") == "value"
    assert cache.get_many(["monitoring-test-key", "monitoring-other-key"]) == {"monitoring-test-key": "value"}

    expected = {"app.cache.get.hit": 2, "app.cache.get.miss": 2}
    # UDP packets arrive a moment after they are sent.
    wait_until(
        lambda: _counter_totals(statsd_listener, expected) == expected, 5, interval=0.05, what=expected
    )


def test_a_task_sends_its_runtime_and_success(statsd_listener):
    sample_monitoring_gauges.delay()

    task = "apps_core_monitoring_tasks_sample_monitoring_gauges"
    [(_, kind)] = _received(statsd_listener, f"app.celery.task.{task}.runtime")
    assert kind == "ms"
    assert _received(statsd_listener, f"app.celery.task.{task}.succeeded") == [("1", "c")]


def test_the_prefix_defaults_to_the_project_slug(client, settings, statsd_listener):
    settings.STATSD_PREFIX = ""
    settings.PROJECT_SLUG = "shop"

    client.get(reverse("home"))

    assert _received(statsd_listener, "shop.request.status.2xx")


def test_nothing_is_sent_and_no_socket_opened_when_statsd_host_is_unset(client, settings, statsd_listener):
    settings.STATSD_HOST = ""

    response = client.get(reverse("home"))

    assert response.status_code == 200
    assert metrics.enabled() is False
    assert statsd_listener.wait_for(bool, timeout=0.5) == set()


def test_requests_succeed_when_nothing_listens_on_the_statsd_port(client, settings):
    settings.STATSD_HOST = "127.0.0.1"
    settings.STATSD_PORT = closed_port()

    # Several, because a refused UDP packet is reported on the socket's next send, if ever.
    statuses = [client.get(reverse("home")).status_code for _ in range(5)]

    assert metrics.enabled() is True
    assert statuses == [200] * 5


def test_an_unresolvable_statsd_host_is_logged_once_and_requests_succeed(client, settings, caplog):
    settings.STATSD_HOST = "statsd.invalid"

    with caplog.at_level(logging.WARNING, logger="apps.core.observability.metrics"):
        statuses = [client.get(reverse("home")).status_code for _ in range(3)]
        sample_monitoring_gauges.delay()

    assert statuses == [200] * 3
    warnings = [
        record.getMessage() for record in caplog.records if record.name == "apps.core.observability.metrics"
    ]
    assert len(warnings) == 1
    assert "statsd.invalid" in warnings[0]
    assert "metrics are off" in warnings[0]
