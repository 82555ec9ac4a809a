"""The running stack: rendered onto free ports, started by `python -m deploy.stack up` (what
`make up` runs) with its own PostgreSQL database, its own Redis and a self-signed certificate."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from supervisor.xmlrpc import SupervisorTransport

from deploy import render
from deploy import stack as deploy_stack
from tests.support.http import Reply
from tests.support.net import free_port
from tests.support.processes import ROOT, ProcessId, alive, descendants, manage
from tests.support.redis_servers import redis_server
from tests.support.waiting import wait_until

STARTUP_TIMEOUT = 120
PROGRAMS = ("web", "worker", "beat")


@dataclass
class Stack:
    root: Path
    env: dict[str, str]
    http_port: int
    https_port: int
    cert: Path
    process: subprocess.Popen[bytes] | None = None
    seen: set[ProcessId] = field(default_factory=set)

    @cached_property
    def slug(self) -> str:
        """The name the renderer gives the supervisor group and the logs (from PROJECT_SLUG)."""
        return str(render.build_context(self.env)["SLUG"])

    @property
    def build(self) -> Path:
        return self.root / "build"

    @property
    def logs(self) -> Path:
        return self.build / "log"

    @property
    def static_root(self) -> Path:
        return self.root / "static"

    @property
    def media_root(self) -> Path:
        return self.root / "media"

    @property
    def origin(self) -> str:
        """The site's canonical origin: the only one Django may ever put into a link."""
        return f"https://localhost:{self.https_port}"

    def log(self, name: str) -> str:
        path = self.logs / name
        return path.read_text(errors="replace") if path.exists() else ""

    def error_lines(self, name: str = "web.log") -> list[str]:
        """The ERROR and CRITICAL lines of a program's log (JSON from Django, text from gunicorn)."""
        found = []
        for line in self.log(name).splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict):
                if str(record.get("level", "")).upper() in {"ERROR", "CRITICAL"}:
                    found.append(line)
            elif "[ERROR]" in line or "[CRITICAL]" in line or line.startswith("Traceback"):
                found.append(line)
        return found

    def nginx_error_lines(self) -> list[str]:
        """The error, crit, alert and emerg lines of nginx's two error logs."""
        return [
            line
            for name in (f"{self.slug}-error.log", "nginx-error.log")
            for line in self.log(name).splitlines()
            if re.search(r"\[(error|crit|alert|emerg)\]", line)
        ]

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def request(
        self,
        method: str,
        path: str,
        *,
        https: bool = True,
        host: str | None = None,
        source: str = "127.0.0.1",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10,
    ) -> Reply:
        """One request to nginx from `source` (any 127.x address: each has its own rate limits)."""
        connection: http.client.HTTPConnection
        if https:
            connection = http.client.HTTPSConnection(
                "localhost",
                self.https_port,
                context=self.tls_context(),
                timeout=timeout,
                source_address=(source, 0),
            )
        else:
            connection = http.client.HTTPConnection(
                "127.0.0.1", self.http_port, timeout=timeout, source_address=(source, 0)
            )
        all_headers = {"Host": host or f"localhost:{self.https_port if https else self.http_port}"}
        all_headers.update(headers or {})
        try:
            connection.request(method, path, body=body, headers=all_headers)
            response = connection.getresponse()
            return Reply(response.status, response.getheaders(), response.read())
        finally:
            connection.close()

    def api_token(self, email: str, source: str) -> str:
        """Create a user with the Django shell and log in through nginx for an API token."""
        self.create_user(email, "a-long-passphrase")
        credentials = json.dumps({"email": email, "password": "a-long-passphrase"}).encode()
        token = self.request(
            "POST",
            "/api/v1/auth/token/",
            body=credentials,
            headers={"Content-Type": "application/json"},
            source=source,
        )
        assert token.status == 200, token.body
        return str(token.json()["token"])

    def csrf_headers(self, source: str = "127.0.0.1") -> dict[str, str]:
        """What this site's own page sends with a session login: the CSRF cookie and token from
        GET /api/v1/auth/csrf/, and its Origin."""
        reply = self.request("GET", "/api/v1/auth/csrf/", source=source)
        assert reply.status == 200, reply.body
        cookie = next(c for c in reply.all("Set-Cookie") if c.startswith("__Host-csrftoken="))
        return {
            "Cookie": cookie.split(";")[0],
            "X-CSRFToken": reply.json()["csrf_token"],
            "Origin": f"https://localhost:{self.https_port}",
        }

    def send_raw(self, data: bytes, *, https: bool = False, timeout: float = 10) -> bytes:
        """Bytes no HTTP library would send (a malformed request), and all nginx answers."""
        port = self.https_port if https else self.http_port
        with socket.create_connection(("127.0.0.1", port), timeout) as plain:
            connection = (
                self.tls_context().wrap_socket(plain, server_hostname="localhost") if https else plain
            )
            connection.sendall(data)
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
            return answer

    def healthy(self) -> bool:
        try:
            return self.request("GET", "/healthz", timeout=5).status == 200
        except OSError:
            return False

    def supervisor(self) -> Any:
        """supervisord's XML-RPC interface (what supervisorctl uses), over its unix socket."""
        transport = SupervisorTransport(None, None, f"unix://{self.build / 'run' / 'supervisor.sock'}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def pid(self, program: str) -> int | None:
        """The pid of a RUNNING program, None while it is starting or stopped."""
        name = program if program == "nginx" else f"{self.slug}:{program}"
        try:
            info = self.supervisor().getProcessInfo(name)
        except (OSError, xmlrpc.client.Fault):
            return None
        return int(info["pid"]) if info["statename"] == "RUNNING" else None

    def remember(self) -> None:
        """Note every process of the stack now, so the final check can find orphans too."""
        if self.process is not None:
            self.seen |= descendants(self.process.pid)

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        return manage(self.env, *args, timeout=60)

    def create_user(self, email: str, password: str) -> None:
        """A user in the stack's database, made with the Django shell as an operator would."""
        code = f"from apps.users.models import User; User.objects.create_user({email!r}, {password!r})"
        created = self.manage("shell", "--no-imports", "-c", code)
        assert created.returncode == 0, created.stderr

    def diagnostics(self) -> str:
        parts = []
        for name in (
            "stack-up.log",
            "supervisord.log",
            "web.log",
            "worker.log",
            "beat.log",
            "nginx-error.log",
        ):
            text = (
                self.log(name) if name != "stack-up.log" else (self.root / name).read_text(errors="replace")
            )
            parts.append(f"--- {name} (tail)\n" + "\n".join(text.splitlines()[-15:]))
        return "\n".join(parts)

    def start(self) -> None:
        with (self.root / "stack-up.log").open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "deploy.stack", "up"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"the stack exited with {self.process.returncode}\n{self.diagnostics()}")
            return (
                " ready." in self.log("worker.log")
                and "beat: Starting" in self.log("beat.log")
                and all(self.pid(program) for program in PROGRAMS)
                and self.healthy()
            )

        try:
            wait_until(ready, timeout, interval=0.5, what="the stack to be ready")
        except AssertionError as error:
            pytest.fail(f"{error}\n{self.diagnostics()}")
        self.remember()

    def stop(self, timeout: float = 60) -> int | None:
        """Ctrl-C, as an operator would: SIGINT to supervisord (`up` replaced itself with it)."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.remember()
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None


def postgres_base_url() -> str:
    """The stack runs on PostgreSQL as production does, whichever database the suite itself uses."""
    url = os.environ.get("DATABASE_URL", "")
    return (
        url if url.startswith(("postgres://", "postgresql://")) else "postgres://postgres@127.0.0.1:5432/app"
    )


def stack_database_url(name: str) -> str:
    return urlunsplit(urlsplit(postgres_base_url())._replace(path=f"/{name}"))


@pytest.fixture(scope="module")
def stack_database() -> Iterator[str]:
    """A fresh PostgreSQL database for the stack, dropped afterwards."""
    base = postgres_base_url()
    name = f"{urlsplit(base).path.strip('/') or 'app'}_stack_e2e_{os.getpid()}"
    admin_url = stack_database_url("postgres")
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield stack_database_url(name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def stack_redis() -> Iterator[str]:
    """A private Redis: the stack's worker must never consume another run's tasks."""
    with redis_server() as server:
        yield server.url()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@contextlib.contextmanager
def running_stack(root: Path, database_url: str, redis_url: str, **settings: str) -> Iterator[Stack]:
    """The production stack under `root` on free local ports, TLS on a self-signed certificate;
    `settings` add to its environment. Stopped at the end, and no process of it may outlive it."""
    cert, key = self_signed_certificate(root)
    http_port, https_port = free_port(), free_port()
    base = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(root)),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DEPLOY_BUILD_DIR": str(root / "build"),
        "STATIC_ROOT": str(root / "static"),
        "MEDIA_ROOT": str(root / "media"),
        "ALLOWED_HOSTS": "localhost,127.0.0.1",
        "NGINX_LISTEN": f"127.0.0.1:{http_port}",
        "NGINX_TLS": "on",
        "NGINX_LISTEN_TLS": f"127.0.0.1:{https_port}",
        "NGINX_TLS_CERT": str(cert),
        "NGINX_TLS_KEY": str(key),
        "NGINX_WORKER_PROCESSES": "1",
        # One of each keeps the restarts quick on a busy machine; a reload still replaces it.
        "GUNICORN_WORKERS": "1",
        "CELERY_WORKER_CONCURRENCY": "1",
        **settings,
    }
    running = Stack(
        root=root, env=deploy_stack.stack_env(base), http_port=http_port, https_port=https_port, cert=cert
    )
    running.start()
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()
        # Whatever a failed test left behind goes too: no process of this stack may outlive it.
        for pid, _ in alive(running.seen):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, stack_database: str, stack_redis: str) -> Iterator[Stack]:
    with running_stack(
        tmp_path_factory.mktemp("stack"),
        stack_database,
        stack_redis,
        # Results let the tests see a task's answer; production needs none.
        CELERY_RESULT_BACKEND=f"{stack_redis}/3",
        NGINX_CLIENT_MAX_BODY_SIZE="1m",
        NGINX_LIMIT_LOGIN_RATE="6r/m",
        NGINX_LIMIT_LOGIN_BURST="3",
        # Long enough that a test's second request finds the first one's answer still cached.
        NGINX_MICROCACHE_TTL="30s",
        # Django's own throttles out of the way: every 429 these tests see comes from nginx.
        API_THROTTLE_LOGIN="100000/minute",
        API_THROTTLE_ANON="100000/minute",
        GUNICORN_THREADS="4",
        GUNICORN_GRACEFUL_TIMEOUT="10",
        # A heartbeat a second, so a test sees it advance without waiting minutes.
        BEAT_HEARTBEAT_INTERVAL="1",
        BEAT_HEARTBEAT_MAX_AGE="10",
    ) as running:
        yield running
