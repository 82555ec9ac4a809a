"""The app under real gunicorn, as supervisor runs it, on a free port of 127.0.0.1, stopped by
the context manager that started it; and a browser that keeps its cookies between requests."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from tests.support.http import Reply
from tests.support.net import free_port
from tests.support.processes import ROOT, manage, process_table, stop_process_group
from tests.support.waiting import wait_until

# Longer than any answer the tests expect (a 2 s connect timeout at worst), shorter than gunicorn's
# 30 s worker timeout: a request that hangs fails the test before gunicorn would kill the worker.
REQUEST_TIMEOUT = 20.0


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
            "GUNICORN_PROC_NAME": f"faults-{self.port}",
            # The tests compare worker pids before and after an outage: no recycling in between.
            "GUNICORN_MAX_REQUESTS": "0",
            # The test profile's default prefixes name the process: workers and commands must share them.
            "CACHE_KEY_PREFIX": f"faults-{self.port}",
            "AUTOCOMPLETE_KEY_PREFIX": f"faults-{self.port}",
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
        table = process_table()
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
            return Reply(response.status, response.getheaders(), response.read())
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
        for line in reply.all("set-cookie"):
            self.cookies.load(line)
        return reply

    def log_in(self, email: str, password: str) -> Reply:
        # The CSRF cookie first, as a page of the site would get it: the session login checks it.
        assert self.request("GET", "/api/v1/auth/csrf/").status == 200
        reply = self.request("POST", "/api/v1/auth/login/", body={"email": email, "password": password})
        assert reply.status == 200, reply.body
        assert "sessionid" in self.cookies
        return reply
