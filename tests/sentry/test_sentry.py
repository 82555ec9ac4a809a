"""Sentry, opt-in: an exception in a view or in a task reaches the DSN as one event, tagged with
the id of the request (for a task: of the request that queued it)."""

import gzip
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.support.net import free_port
from tests.support.processes import celery, celery_env, stop_process_group
from tests.support.redis_servers import redis_server
from tests.support.waiting import wait_for_http, wait_until

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = pytest.mark.integration


class SentryReceiver:
    """A local HTTP server standing in for Sentry: it keeps the events it is sent."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.events += _events_in_envelope(body)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self.port}/1"

    def wait_for_events(self, count: int, timeout: float = 15.0) -> list[dict]:
        """Wait for `count` events; return those received either way (the caller's assertion shows them)."""
        with suppress(AssertionError):
            wait_until(lambda: len(self.events) >= count, timeout, what=f"{count} events")
        return self.events


def _events_in_envelope(body: bytes) -> list[dict]:
    """Sentry's envelope: a header line, then (item header, item payload) line pairs."""
    lines = body.split(b"\n")
    events = []
    for header, payload in zip(lines[1::2], lines[2::2], strict=False):
        if header and json.loads(header).get("type") == "event":
            events.append(json.loads(payload))
    return events


@pytest.fixture(scope="module")
def receiver() -> Iterator[SentryReceiver]:
    receiver = SentryReceiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture(scope="module")
def web(receiver: SentryReceiver) -> Iterator[str]:
    """The app under gunicorn with SENTRY_DSN pointing at the receiver."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.sentry.settings",
        "SENTRY_DSN": receiver.dsn,
        "SENTRY_ENVIRONMENT": "test",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1", "config.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_an_exception_in_a_view_arrives_as_one_event_with_the_request_id(web, receiver):
    request = urllib.request.Request(f"{web}/test-failure/", headers={"X-Request-ID": "sentry-view-1"})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=10)
    assert error.value.code == 500

    events = receiver.wait_for_events(1)
    assert len(events) == 1
    event = events[0]
    assert event["exception"]["values"][-1]["type"] == "DeliberateError"
    assert event["tags"]["request_id"] == "sentry-view-1"
    assert event["environment"] == "test"
    # No personal data by default: no client address, no cookies.
    assert "ip_address" not in event.get("user", {})
    assert "cookies" not in event.get("request", {})


@pytest.fixture
def test_database(django_db_setup: None) -> dict[str, Any]:
    """The test database (created by pytest-django), which the web and worker processes share."""
    return dict(settings.DATABASES["default"])


@pytest.fixture
def web_and_worker(test_database, tmp_path) -> Iterator[tuple[str, SentryReceiver]]:
    """Fresh processes of their own: a private Redis broker, a receiver, gunicorn and a worker.

    Nothing in this test process is reconfigured, so no other test can inherit its state.
    """
    receiver = SentryReceiver()
    try:
        with redis_server() as redis_port_server:
            sentry = {"SENTRY_DSN": receiver.dsn, "SENTRY_ENVIRONMENT": "test"}
            worker_env = celery_env(database=test_database, redis_port=redis_port_server.port, **sentry)
            web_env = {**worker_env, "DJANGO_SETTINGS_MODULE": "tests.sentry.settings"}
            port = free_port()
            with (tmp_path / "web.log").open("wb") as log:
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "gunicorn",
                        "--bind",
                        f"127.0.0.1:{port}",
                        "--workers",
                        "1",
                        "config.wsgi",
                    ],
                    cwd=ROOT,
                    env=web_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                with celery(
                    "worker", worker_env, tmp_path, "--concurrency=1", "--include=tests.sentry.tasks"
                ):
                    wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=90)
                    yield f"http://127.0.0.1:{port}", receiver
            finally:
                stop_process_group(process)
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


# Marked, so pytest-django creates the test database even when this is the only test selected
# (it sets up only the databases that the selected tests ask for), and empties it afterwards.
@pytest.mark.django_db(transaction=True)
def test_an_exception_in_a_task_arrives_as_one_event_with_the_id_of_the_request_that_queued_it(
    web_and_worker,
):
    """A bug in a task: the user saw nothing (the request answered 202 before the task ran) and
    the task's work was not done; the one thing left to find it by is the Sentry event, which
    carries the request id that joins it to the request's log lines."""
    web_url, receiver = web_and_worker
    request = urllib.request.Request(
        f"{web_url}/test-queue-failing-task/", headers={"X-Request-ID": "sentry-task-1"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202

    events = receiver.wait_for_events(1, timeout=60)
    assert len(events) == 1, "the failing task reached Sentry as no event"
    # A second event would be the same failure reported twice (say, once more from the log line).
    time.sleep(3)
    assert len(receiver.events) == 1, [event.get("logger") for event in receiver.events]
    event = events[0]
    assert event["exception"]["values"][-1]["type"] == "DeliberateTaskError"
    assert event["tags"]["request_id"] == "sentry-task-1"
    assert event["environment"] == "test"
    assert "ip_address" not in event.get("user", {})
