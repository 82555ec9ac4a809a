"""Helpers for tests that start real processes or sockets."""

import io
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any


def call_wsgi(
    application: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]],
    path: str,
    *,
    method: str = "GET",
    host: str = "testserver",
    **headers: str,
) -> tuple[str, dict[str, str], bytes]:
    """Call a WSGI application as a server would, `path` with its query string; its status,
    headers and body. The answer is closed afterwards, which sends Django's request_finished."""
    path, _, query = path.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": host,
        "SERVER_PORT": "80",
        "HTTP_HOST": host,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.url_scheme": "http",
        **headers,
    }
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer["status"], answer["headers"] = status, dict(headers)

    result = application(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return answer["status"], answer["headers"], body


def api_error(response: Any, status: int) -> dict[str, Any]:
    """The `error` of a Django test client's response, asserting its status and the API's one
    error shape: only `error` and `request_id`, the id the response header carries, a message."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["request_id"] == response["X-Request-ID"]
    assert body["error"]["message"]
    return body["error"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port() -> int:
    """A port nothing listens on: connections to it are refused at once."""
    return free_port()


@contextmanager
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers: a hung dependency."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(connection)

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        server.close()


def wait_for_http(url: str, timeout: float = 30.0) -> None:
    """Poll `url` until it answers at all (any status), or fail after `timeout` seconds."""
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout}s") from None
            time.sleep(0.2)


class StatsdListener:
    """A real UDP socket standing in for the statsd server: collects every packet it is sent."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.lines: list[str] = []
        # The metric names of each packet, in the order they came.
        self.packets: list[set[str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        self.sock.settimeout(0.05)
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            lines = [line for line in data.decode("ascii").splitlines() if line]
            with self._lock:
                self.packets.append({line.partition(":")[0] for line in lines})
                self.lines.extend(lines)

    def metrics(self) -> list[tuple[str, str, str]]:
        """(name, value, type) of every metric received so far, e.g. ("keel.request.db.time", "1.2", "ms")."""
        with self._lock:
            lines = list(self.lines)
        received = []
        for line in lines:
            name, _, rest = line.partition(":")
            value, _, kind = rest.partition("|")
            received.append((name, value, kind.split("|")[0]))
        return received

    def names(self) -> set[str]:
        return {name for name, _, _ in self.metrics()}

    def wait_for(self, predicate: Callable[[set[str]], bool], timeout: float = 10.0) -> set[str]:
        """Wait until the names received satisfy `predicate`; return them either way."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not predicate(self.names()):
            time.sleep(0.05)
        return self.names()

    def clear(self) -> None:
        with self._lock:
            self.lines.clear()
            self.packets.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
