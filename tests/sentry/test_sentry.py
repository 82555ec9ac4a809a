"""Sentry, opt-in: an exception in a view reaches the DSN as one event, tagged with the request id."""

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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import free_port, wait_for_http

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
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.1)
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
