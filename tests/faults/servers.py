"""What the fault tests run and break: the app under real gunicorn, a redis-server that can be
killed and started again on the same port, and a private PostgreSQL cluster that can be stopped.

Everything listens on 127.0.0.1 on free ports and is stopped by the context manager that started
it; the machine's shared services are never touched.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import redis

from deploy import stack as deploy_stack
from tests.helpers import free_port
from tests.postgres_clusters import Cluster, Clusters
from tests.processes import ROOT, _port_open, manage, start_redis_server, stop_process_group, wait_until

# Longer than any answer the tests expect (a 2 s connect timeout at worst), shorter than gunicorn's
# 30 s worker timeout: a request that hangs fails the test before gunicorn would kill the worker.
REQUEST_TIMEOUT = 20.0


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Web:
    """The app under gunicorn with deploy/gunicorn.conf.py, as supervisor runs it, on a free port."""

    def __init__(self, env: dict[str, str], log_dir: Path, *, workers: int = 2) -> None:
        self.port = free_port()
        self.log_path = log_dir / f"gunicorn-{uuid.uuid4().hex[:8]}.log"
        base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
        self.env = {
            **base,
            "PYTHONDONTWRITEBYTECODE": "1",
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "LOG_FORMAT": "text",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_THREADS": "2",
            "GUNICORN_PROC_NAME": f"keel-faults-{self.port}",
            # The tests compare worker pids before and after an outage: no recycling in between.
            "GUNICORN_MAX_REQUESTS": "0",
            # The test profile's default prefixes name the process: workers and commands must share them.
            "CACHE_KEY_PREFIX": f"keel-faults-{self.port}",
            "AUTOCOMPLETE_KEY_PREFIX": f"keel-faults-{self.port}",
            # The tests poll; throttling the polls is not what they are about.
            "API_THROTTLE_ANON": "off",
            "API_THROTTLE_USER": "off",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "config.wsgi"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def answers() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{self.log()[-3000:]}")
            try:
                return self.request("GET", "/healthz", timeout=5).status == 200
            except OSError:
                return False

        # Generous: each worker imports Django on a machine others load too.
        wait_until(answers, timeout=90, interval=0.3, what=f"gunicorn on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process, timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def processes(self) -> set[tuple[int, int]]:
        """(pid, start time) of the master and its workers: a restarted one is a new pair."""
        assert self.process is not None
        table = deploy_stack.process_table()
        master = self.process.pid
        return {(pid, start) for pid, (ppid, start) in table.items() if pid == master or ppid == master}

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = REQUEST_TIMEOUT,
    ) -> Reply:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        all_headers = {"Host": f"127.0.0.1:{self.port}", "Accept": "application/json", **(headers or {})}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        try:
            connection.request(method, path, body=payload, headers=all_headers)
            response = connection.getresponse()
            headers_out = {key.lower(): value for key, value in response.getheaders()}
            # Set-Cookie may come more than once; keep them all for the browser.
            headers_out["set-cookie"] = "\n".join(response.headers.get_all("Set-Cookie") or [])
            return Reply(response.status, headers_out, response.read())
        finally:
            connection.close()

    def manage(self, *args: str) -> str:
        """Run a management command with the web's environment, as an operator on the host would."""
        result = manage(self.env, *args, timeout=180)
        assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout


@contextmanager
def running_web(env: dict[str, str], log_dir: Path, *, workers: int = 2) -> Iterator[Web]:
    web = Web(env, log_dir, workers=workers)
    try:
        web.start()
        yield web
    finally:
        web.stop()


class Browser:
    """Cookies kept between requests, as a browser keeps them; CSRF token sent on writes."""

    def __init__(self, web: Web) -> None:
        self.web = web
        self.cookies: SimpleCookie = SimpleCookie()

    def request(self, method: str, path: str, *, body: Any = None, accept: str = "application/json") -> Reply:
        headers = {"Accept": accept}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{key}={morsel.value}" for key, morsel in self.cookies.items())
        if method not in ("GET", "HEAD") and "csrftoken" in self.cookies:
            headers["X-CSRFToken"] = self.cookies["csrftoken"].value
        reply = self.web.request(method, path, body=body, headers=headers)
        for line in filter(None, reply.headers.get("set-cookie", "").split("\n")):
            self.cookies.load(line)
        return reply

    def log_in(self, email: str, password: str) -> Reply:
        # The CSRF cookie first, as a page of the site would get it: the session login checks it.
        assert self.request("GET", "/api/v1/auth/csrf/").status == 200
        reply = self.request("POST", "/api/v1/auth/login/", body={"email": email, "password": password})
        assert reply.status == 200, reply.body
        assert "sessionid" in self.cookies
        return reply


class RedisServer:
    """A redis-server on a port fixed at creation, so it can be killed and come back on the same one."""

    def __init__(self, *extra_args: str) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="keel-faults-redis-"))
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (or start again, on the same port and directory, so a persistent one reloads)."""
        self.process = start_redis_server(self.port, str(self.directory), *self.extra_args)
        wait_until(lambda: _port_open(self.port), timeout=20, what=f"redis-server on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: what a crash or the OOM killer does; nothing is saved, nothing is closed politely."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        wait_until(lambda: not _port_open(self.port), timeout=10, what="the killed Redis's port to close")

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


class Postgres:
    """A private PostgreSQL cluster (initdb) that a test may stop and start with pg_ctl."""

    def __init__(self, clusters: Clusters, cluster: Cluster) -> None:
        self.clusters = clusters
        self.cluster = cluster

    def url(self, database: str) -> str:
        return self.cluster.url(database)

    def stop(self) -> None:
        # -m fast: what a restart for an upgrade or a failover does; sessions are cut at once.
        self.clusters.run("pg_ctl", "-D", str(self.cluster.data), "-m", "fast", "-w", "-t", "60", "stop")

    def start(self) -> None:
        self.clusters.start(self.cluster)


@contextmanager
def postgres_cluster() -> Iterator[Postgres]:
    root = Path(tempfile.mkdtemp(prefix="keel-faults-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    clusters = Clusters(root)
    try:
        yield Postgres(clusters, clusters.primary())
    finally:
        with suppress(Exception):
            clusters.stop_all()
        shutil.rmtree(root, ignore_errors=True)
