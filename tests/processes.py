"""Real processes for tests: a private redis-server, celery workers and beat.

Each runs in its own process group (so a SIGKILL reaches the pool's children too), on
127.0.0.1, on a free port, with its output in a log file the test can read; every context
manager stops what it started.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

import kombu.pools

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent


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


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a management command in a fresh process with `env`, as an operator on the host would."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _port_open(port: int) -> bool:
    with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


def stop_process_group(
    process: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 15
) -> None:
    """Send `sig` to the process's group, then SIGKILL whatever is still there after `timeout`."""
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
    # Children (the pool) may outlive a killed parent for a moment; never leave them behind.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


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


@contextmanager
def redis_server(*extra_args: str) -> Iterator[int]:
    """A throwaway redis-server (see start_redis_server), stopped at the end; yields its port.

    `extra_args` are more redis-server options (`--replicaof 127.0.0.1 <port>`, say).
    """
    port = free_port()
    directory = tempfile.mkdtemp(prefix="redis-")
    process = start_redis_server(port, directory, *extra_args)
    try:
        wait_until(lambda: _port_open(port), timeout=10, what=f"redis-server on port {port}")
        yield port
    finally:
        stop_process_group(process)
        shutil.rmtree(directory, ignore_errors=True)


def database_url(database: dict[str, Any]) -> str:
    """A DATABASE_URL for Django's DATABASES entry (the test database, inside a test), any engine."""
    engine = database["ENGINE"].rsplit(".", 1)[-1]
    if engine == "sqlite3":
        return f"sqlite:///{database['NAME']}"
    scheme, default_port = {"postgresql": ("postgres", 5432), "mysql": ("mysql", 3306)}[engine]
    credentials = quote(database["USER"] or "", safe="")
    if database["PASSWORD"]:
        credentials += ":" + quote(database["PASSWORD"], safe="")
    host = database["HOST"] or "127.0.0.1"
    return f"{scheme}://{credentials}@{host}:{database['PORT'] or default_port}/{database['NAME']}"


def celery_env(
    *, database: dict[str, Any], redis_port: int, broker_url: str | None = None, **extra: str
) -> dict[str, str]:
    """The environment of a worker or beat that shares this test's database and private Redis."""
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    return {
        **base,
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(database),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}",
        "CELERY_BROKER_URL": broker_url or f"redis://127.0.0.1:{redis_port}/1",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CACHE_KEY_PREFIX": "keel-celery-test",
        "LOG_FORMAT": "text",
        # The suite has run Django's system checks already; each process would take seconds more.
        "CELERY_SKIP_CHECKS": "1",
        **extra,
    }


class CeleryProcess:
    """A running `celery worker` or `celery beat`, with its log."""

    def __init__(self, process: subprocess.Popen[Any], log_path: Path, ready: str) -> None:
        self.process = process
        self.log_path = log_path
        self.ready = ready

    def wait_until_ready(self, timeout: float = 90) -> None:
        # Generous: a cold start imports Django and Celery, slow on a busy machine.
        self.wait_for_log(self.ready, timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        def found() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"celery exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            return text in self.log()

        try:
            wait_until(found, timeout=timeout, interval=0.2, what=repr(text))
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- log ---\n{self.log()[-3000:]}") from None

    def kill(self) -> None:
        """SIGKILL the whole process group: what the OOM killer or a lost host does."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=5)

    def stop(self) -> None:
        stop_process_group(self.process)


def start_celery(kind: str, env: dict[str, str], log_dir: Path, *args: str) -> CeleryProcess:
    """Start `celery -A config <kind> *args` in its own process group; does not wait for it."""
    log_path = log_dir / f"{kind}-{uuid.uuid4().hex[:8]}.log"
    command = [sys.executable, "-m", "celery", "-A", "config", kind, "--loglevel=INFO", *args]
    if kind == "worker":
        command += ["--hostname", f"test-{uuid.uuid4().hex[:8]}@%h", "--without-gossip", "--without-mingle"]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return CeleryProcess(process, log_path, ready="ready." if kind == "worker" else "beat: Starting...")


@contextmanager
def celery(kind: str, env: dict[str, str], log_dir: Path, *args: str) -> Iterator[CeleryProcess]:
    """A running worker or beat, stopped at the end; waits until it is ready."""
    started = start_celery(kind, env, log_dir, *args)
    try:
        started.wait_until_ready()
        yield started
    finally:
        started.stop()


@contextmanager
def publishing_to(broker_url: str) -> Iterator[None]:
    """Make this process's Celery app publish to `broker_url` for real (not eagerly)."""
    from config.celery import app

    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}

    def reset_pools() -> None:
        # The app caches its connection pools on first use; drop them so the new URL is used.
        kombu.pools.reset()
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.update(broker_url=broker_url, task_always_eager=False)
    reset_pools()
    try:
        yield
    finally:
        app.conf.update(saved)
        reset_pools()
