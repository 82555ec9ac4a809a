"""Redis Sentinel for tests, on a free port of 127.0.0.1, stopped on exit.

Plain servers come from tests.processes.redis_server.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.helpers import free_port


def _wait_for_ping(port: int, process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            redis.Redis(port=port, socket_timeout=0.5).ping()
            return
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {port} did not start") from None
            time.sleep(0.05)


@contextmanager
def redis_sentinel(master_name: str, master_port: int) -> Iterator[int]:
    """A redis-server in sentinel mode watching the primary at `master_port`; yields its port."""
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="keel-sentinel-"))
    # Sentinel rewrites its config file as it learns the topology, so it needs a file of its own.
    config = folder / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
        f"sentinel monitor {master_name} 127.0.0.1 {master_port} 1\n"
        f"sentinel down-after-milliseconds {master_name} 1000\n"
    )
    process = subprocess.Popen(["redis-server", str(config), "--sentinel"], stdout=subprocess.DEVNULL)
    try:
        _wait_for_ping(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
