"""Real processes for tests: management commands, celery workers and beat, and what is running.

Each runs in its own process group (so a SIGKILL reaches the pool's children too), on
127.0.0.1, on a free port, with its output in a log file the test can read; every context
manager stops what it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

import kombu.pools

from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent.parent

ProcessId = tuple[int, int]  # (pid, start time): a pid that was reused is another process


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, start time) of every process on the machine (Linux /proc).

    The start time tells a reused pid from the process that had it; the stack tests and the bench
    use it to prove that nothing they started is left behind.
    """
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        table[int(entry.name)] = (int(fields[1]), int(fields[19]))
    return table


def descendants(root: int) -> set[ProcessId]:
    """`root` and every process below it, now."""
    table = process_table()
    found: set[ProcessId] = set()
    if root in table:
        found.add((root, table[root][1]))
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, start) in table.items():
            if ppid == parent and (pid, start) not in found:
                found.add((pid, start))
                frontier.append(pid)
    return found


def alive(processes: set[ProcessId]) -> set[ProcessId]:
    """Those of `processes` still running (the same process, not a reuse of its pid)."""
    table = process_table()
    return {(pid, start) for pid, start in processes if pid in table and table[pid][1] == start}


def settings_in_a_fresh_process(expression: str, **env: str) -> Any:
    """`expression` (over `settings`) as a fresh process of the development profile reads it, with
    only this environment: what a deployer's variables make of the settings, nothing inherited."""
    code = f"import json; from django.conf import settings; print(json.dumps({expression}))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={
            "PATH": os.environ["PATH"],
            "PYTHONDONTWRITEBYTECODE": "1",
            "DJANGO_SETTINGS_MODULE": "config.settings.development",
            **env,
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


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
        "CACHE_KEY_PREFIX": "celery-test",
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
