"""Ports and sockets: a free port, a closed one, a server that never answers, a statsd listener."""

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from tests.support.waiting import wait_until


def free_port() -> int:
    """A port of 127.0.0.1 free now (the kernel's pick), for a server the test starts."""
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
        """(name, value, type) of every metric received so far, e.g. ("app.request.db.time", "1.2", "ms")."""
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
        """Wait until the names received satisfy `predicate`; return them either way (the caller's
        assertion then shows what did come)."""
        with suppress(AssertionError):
            wait_until(lambda: predicate(self.names()), timeout, interval=0.05, what="the metrics")
        return self.names()

    def clear(self) -> None:
        with self._lock:
            self.lines.clear()
            self.packets.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()
