"""Private redis-servers for tests, on free ports of 127.0.0.1, stopped by the context manager
that started them; the machine's shared Redis is never touched."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import redis

from tests.support.net import free_port
from tests.support.processes import stop_process_group
from tests.support.waiting import port_open, wait_until


def start_redis_server(port: int, directory: str, *extra_args: str) -> subprocess.Popen[bytes]:
    """Start a redis-server configured like a broker's (no persistence, no eviction) on `port`.

    In its own process group, working in `directory`: Redis writes dump.rdb into its working
    directory in some cases (a replica's full sync) even with saving off, and a later server
    would load that file. Returns at once; the caller waits for the port.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed; on Debian: apt-get install -y redis-server")
    return subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--maxmemory-policy", "noeviction", "--dir", directory, *extra_args],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


class RedisServer:
    """A redis-server on a port fixed at creation, so it can be killed and come back on the same one."""

    def __init__(self, *extra_args: str) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="faults-redis-"))
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (or start again, on the same port and directory, so a persistent one reloads)."""
        self.process = start_redis_server(self.port, str(self.directory), *self.extra_args)
        wait_until(lambda: port_open(self.port), timeout=20, what=f"redis-server on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: what a crash or the OOM killer does; nothing is saved, nothing is closed politely."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        wait_until(lambda: not port_open(self.port), timeout=10, what="the killed Redis's port to close")

    def pause(self) -> None:
        """SIGSTOP: a hung server. The kernel still accepts connections; nothing ever answers."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGCONT)  # a paused server cannot act on SIGTERM
            stop_process_group(self.process)

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(port=self.port, db=db, socket_timeout=5)

    def url(self, db: int | None = None) -> str:
        """The server's URL; without a database number, as REDIS_URL is given (each role picks its own)."""
        return f"redis://127.0.0.1:{self.port}" + ("" if db is None else f"/{db}")


@contextmanager
def redis_server(*extra_args: str, started: bool = True) -> Iterator[RedisServer]:
    """A RedisServer configured like a broker's; `extra_args` are more redis-server options
    (later ones win: `--appendonly yes` turns persistence on)."""
    server = RedisServer(*extra_args)
    try:
        if started:
            server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


@contextmanager
def redis_sentinel(master_name: str, master_port: int) -> Iterator[int]:
    """A redis-server in sentinel mode watching the primary at `master_port`; yields its port."""
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="sentinel-"))
    # Sentinel rewrites its config file as it learns the topology, so it needs a file of its own.
    config = folder / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
        f"sentinel monitor {master_name} 127.0.0.1 {master_port} 1\n"
        f"sentinel down-after-milliseconds {master_name} 1000\n"
    )
    process = subprocess.Popen(["redis-server", str(config), "--sentinel"], stdout=subprocess.DEVNULL)
    try:
        wait_until(
            lambda: process.poll() is None and port_open(port),
            timeout=10,
            what=f"redis sentinel on port {port}",
        )
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
