"""Many app hosts: nginx spreads requests over several gunicorns and routes around a dead one.

Broken: one of two gunicorn backends, killed with SIGKILL mid-stream.
Seen by the user: nothing; every GET is answered 200 by the other backend.
Lost: nothing.
"""

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.net import free_port
from tests.support.processes import stop_process_group
from tests.support.waiting import wait_for_http

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = pytest.mark.integration


def _gunicorn(port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(log.parent)),
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_PROC_NAME": f"upstream-test-{port}",
    }
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "config.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.fixture(scope="module")
def two_backends(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    root = tmp_path_factory.mktemp("upstreams")
    ports = [free_port(), free_port()]
    backends = [_gunicorn(port, root / f"gunicorn-{port}.log") for port in ports]
    nginx_port = free_port()
    render_env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(root)),
        "DEPLOY_BUILD_DIR": str(root / "build"),
        "NGINX_LISTEN": f"127.0.0.1:{nginx_port}",
        "NGINX_TLS": "off",
        "NGINX_WORKER_PROCESSES": "1",
        "NGINX_UPSTREAM_SERVERS": " ".join(f"127.0.0.1:{port}" for port in ports),
    }
    rendered = subprocess.run(
        [sys.executable, "-m", "deploy.render"], cwd=ROOT, env=render_env, capture_output=True, text=True
    )
    assert rendered.returncode == 0, rendered.stderr
    (root / "build" / "log").mkdir(parents=True, exist_ok=True)
    (root / "build" / "run").mkdir(parents=True, exist_ok=True)
    nginx = subprocess.Popen(
        [
            "nginx",
            "-c",
            str(root / "build" / "nginx" / "nginx.conf"),
            "-e",
            str(root / "build" / "log" / "e.log"),
        ],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for port in ports:
            wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=90)
        wait_for_http(f"http://127.0.0.1:{nginx_port}/healthz", timeout=30)
        yield f"http://127.0.0.1:{nginx_port}", backends
    finally:
        for process in [nginx, *backends]:
            if process.poll() is None:
                stop_process_group(process)


def _get(url: str) -> int:
    request = urllib.request.Request(url, headers={"Host": "localhost"})
    with urllib.request.urlopen(request, timeout=15) as response:
        return int(response.status)


@pytest.mark.faults
def test_no_get_fails_when_one_of_two_backends_is_killed(two_backends):
    """Broke: one of two gunicorn backends behind nginx, SIGKILLed mid-stream.
    Saw: nothing; every GET was answered 200 by the other backend.
    Lost: nothing.
    """
    url, backends = two_backends
    assert [_get(f"{url}/healthz") for _ in range(10)] == [200] * 10
    os.killpg(backends[0].pid, signal.SIGKILL)
    backends[0].wait(timeout=10)
    statuses = [_get(f"{url}/healthz") for _ in range(40)]
    assert statuses == [200] * 40
