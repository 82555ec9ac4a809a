"""The one way a test waits: poll a condition until it holds, or fail naming what it waited for."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from typing import Any


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "") -> Any:
    """Poll `condition` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what or condition}")
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on `host`:`port` now."""
    with suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:`port`."""
    wait_until(lambda: port_open(port), timeout, interval=0.05, what=f"a listener on port {port}")


def http_answers(url: str) -> bool:
    """Whether `url` answers at all, whatever the status."""
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def wait_for_http(url: str, timeout: float = 30.0) -> None:
    """Wait until `url` answers at all (any status)."""
    wait_until(lambda: http_answers(url), timeout, interval=0.2, what=url)
