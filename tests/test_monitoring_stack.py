"""Monitoring against running processes: a real gunicorn and Celery worker on a private Redis.

A UDP listener stands in for statsd; the Munin plugins run as programs (and through munin-run)
against the running gunicorn, the way munin-node runs them, and Munin's stock nginx plugins read
the stub_status of the deploy's nginx in front of it.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.db import connections

from tests.support.net import StatsdListener, closed_port, free_port
from tests.support.processes import database_url, stop_process_group
from tests.support.redis_servers import redis_server
from tests.support.waiting import wait_for_http, wait_for_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PLUGIN = ROOT / "monitoring" / "munin" / "plugins" / "app_"
SITE = "shop"  # the slug the plugins are linked under, as an operator installs them
CATALOGUE = ROOT / "monitoring" / "statsd" / "catalogue.csv"
SERVICES = ("queues", "beat_lag", "beats", "dead_letters", "gunicorn_workers")
STOCK_NGINX_PLUGINS = Path("/usr/share/munin/plugins")
CACHE_PREFIX = "monitoringstack"
SAMPLER = "apps.core.monitoring_tasks.sample_monitoring_gauges"
GUNICORN_WORKERS = 2
# How long gunicorn and the worker may take to start answering (a cold first start is slow).
STARTUP_SECONDS = 90
# The mark makes pytest-django create the test database, which gunicorn's requests then query.
pytestmark = pytest.mark.django_db


@dataclass
class Stack:
    url: str
    pidfile: Path
    broker_url: str
    redis: redis.Redis
    listener: StatsdListener
    run_dir: Path

    def get(self, path: str, data: bytes | None = None, timeout: float = 30) -> int:
        # The URL is the stack's own http://127.0.0.1 address.
        request = urllib.request.Request(
            self.url + path, data=data, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return 0  # no answer (yet)

    def write_heartbeat(self, *, age_seconds: float) -> None:
        """Beat's heartbeat as the app reads it: unix seconds under the cache key beat:heartbeat."""
        self.redis.set(f"{CACHE_PREFIX}:1:beat:heartbeat", int(time.time() - age_seconds))


def _stop(process: subprocess.Popen, stop_signal: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, stop_signal)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def stack(django_db_setup, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("monitoring-stack")
    database = connections["default"].settings_dict
    listener = StatsdListener()
    with redis_server() as redis_port_server:
        env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", str(run_dir)),
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            # The test database pytest-django just created, so requests that query work.
            "DATABASE_URL": database_url(database),
            "REDIS_URL": f"redis://127.0.0.1:{redis_port_server.port}",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "CACHE_KEY_PREFIX": CACHE_PREFIX,
            "STATSD_HOST": "127.0.0.1",
            "STATSD_PORT": str(listener.port),
            "STATSD_PREFIX": "app",
        }
        web_port = free_port()
        pidfile = run_dir / "gunicorn.pid"
        gunicorn = [
            *(str(BIN / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{web_port}"),
            *("--bind", f"unix:{run_dir / 'gunicorn.sock'}"),
            *("--workers", str(GUNICORN_WORKERS), "--pid", str(pidfile)),
            # gunicorn 25's control socket defaults to one path in $HOME that every gunicorn shares.
            "--no-control-socket",
            # What deploy/gunicorn.conf.py sets from STATSD_HOST, STATSD_PORT and STATSD_PREFIX.
            *("--statsd-host", f"127.0.0.1:{listener.port}", "--statsd-prefix", "app"),
        ]
        worker = [
            *(str(BIN / "celery"), "-A", "config", "worker", "--pool", "solo", "--loglevel", "WARNING"),
            *("--include", "tests.monitoring_worker_tasks", "--without-gossip", "--without-mingle"),
        ]
        processes: list[subprocess.Popen] = []
        logs = []
        try:
            for name, command in (("gunicorn", gunicorn), ("worker", worker)):
                logs.append((run_dir / f"{name}.log").open("w"))
                processes.append(
                    subprocess.Popen(
                        command,
                        cwd=ROOT,
                        env=env,
                        stdout=logs[-1],
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            wait_for_port(web_port)
            stack = Stack(
                url=f"http://127.0.0.1:{web_port}",
                pidfile=pidfile,
                broker_url=f"redis://127.0.0.1:{redis_port_server.port}/1",
                redis=redis.Redis(host="127.0.0.1", port=redis_port_server.port, db=0),
                listener=listener,
                run_dir=run_dir,
            )
            # A cold start (a fresh checkout compiling its bytecode) can take many seconds.
            wait_until(lambda: stack.get("/healthz", timeout=5) == 200, STARTUP_SECONDS, 0.2, "gunicorn")
            assert pidfile.exists()
            yield stack
        finally:
            # gunicorn (first) stops at once on SIGINT; the worker finishes its task on SIGTERM.
            for process, stop_signal in zip(processes, (signal.SIGINT, signal.SIGTERM), strict=False):
                _stop(process, stop_signal)
            for log in logs:
                log.close()
            listener.close()


# What a request, the three kinds of task outcome and the sampler must send, between them.
EXPECTED = {
    "app.request.time.home",
    "app.request.time.v1_users_token",
    "app.request.time.unresolved",
    "app.request.status.2xx",
    "app.request.status.4xx",
    "app.request.db.queries",
    "app.request.db.time",
    "app.cache.get.hit",
    "app.cache.get.miss",
    "app.celery.task.apps_core_monitoring_tasks_sample_monitoring_gauges.runtime",
    "app.celery.task.apps_core_monitoring_tasks_sample_monitoring_gauges.succeeded",
    "app.celery.task.tests_monitoring_fails.failed",
    "app.celery.task.tests_monitoring_retries_once.retried",
    "app.celery.task.tests_monitoring_retries_once.succeeded",
    "app.celery.queue.celery.depth",
    "app.celery.beat.heartbeat_age",
    "app.gunicorn.requests",
    "app.gunicorn.request.duration",
    "app.gunicorn.request.status.200",
}


@pytest.fixture(scope="module")
def exercised(stack):
    """One request of each kind through gunicorn and one task of each outcome on the worker."""
    stack.write_heartbeat(age_seconds=10)
    statuses = [
        stack.get("/"),
        stack.get("/no/such/page"),
        # A token login queries the database and the login throttle reads the cache (the session
        # login would stop at its CSRF check first).
        stack.get(
            "/api/v1/auth/token/", data=json.dumps({"email": "a@example.com", "password": "x"}).encode()
        ),
        stack.get(
            "/api/v1/auth/token/", data=json.dumps({"email": "a@example.com", "password": "x"}).encode()
        ),
    ]
    # Not the current app: shared tasks elsewhere in this process must stay bound to the project's.
    sender = Celery(broker=stack.broker_url, set_as_current=False)
    try:
        for task in (SAMPLER, "tests.monitoring.fails", "tests.monitoring.retries_once"):
            sender.send_task(task)
        names = stack.listener.wait_for(lambda received: received >= EXPECTED, timeout=STARTUP_SECONDS)
    finally:
        sender.close()
    return statuses, names


def test_requests_through_gunicorn_are_answered_while_metrics_are_sent(exercised):
    statuses, _ = exercised
    assert statuses == [200, 404, 401, 401]  # the login is refused: no such user


def test_a_request_and_a_task_on_the_real_stack_send_every_expected_metric(exercised):
    _, names = exercised
    assert EXPECTED - names == set()


def _catalogue_patterns() -> list[re.Pattern[str]]:
    with CATALOGUE.open() as catalogue:
        names = [row["name"] for row in csv.DictReader(catalogue)]
    return [re.compile(re.sub(r"\\\{\w+\\\}", "[A-Za-z0-9_-]+", re.escape(name))) for name in names]


def test_every_metric_the_stack_sends_is_in_the_catalogue(exercised):
    _, names = exercised
    patterns = _catalogue_patterns()
    uncatalogued = {
        name
        for name in names
        if not any(pattern.fullmatch(name.removeprefix("app.")) for pattern in patterns)
    }
    assert uncatalogued == set()


# --- Munin ----------------------------------------------------------------------------------
FIELD = r"[A-Za-z_][A-Za-z0-9_]*"
NUMBER = r"-?\d+(?:\.\d+)?"
LEVEL = rf"(?:{NUMBER})?(?::(?:{NUMBER})?)?"
GRAPH_ATTRIBUTES = {
    "graph_title",
    "graph_vlabel",
    "graph_args",
    "graph_category",
    "graph_info",
    "graph_order",
}
FIELD_ATTRIBUTES = {"label", "type", "min", "max", "draw", "warning", "critical", "info", "cdef", "graph"}


def parse_config(output: str) -> dict[str, dict[str, str]]:
    """Check `config` output against the Munin plugin protocol; return {field: {attribute: value}}."""
    graph: dict[str, str] = {}
    fields: dict[str, dict[str, str]] = {}
    for line in output.splitlines():
        key, _, value = line.partition(" ")
        assert value.strip(), f"line without a value: {line!r}"
        if key.startswith("graph_"):
            assert key in GRAPH_ATTRIBUTES, f"unknown graph attribute: {line!r}"
            graph[key] = value
            continue
        match = re.fullmatch(rf"({FIELD})\.(\w+)", key)
        assert match, f"not a field attribute: {line!r}"
        field, attribute = match.groups()
        assert attribute in FIELD_ATTRIBUTES, f"unknown field attribute: {line!r}"
        fields.setdefault(field, {})[attribute] = value
    assert {"graph_title", "graph_vlabel", "graph_category"} <= set(graph)
    assert fields, "a graph without fields"
    for field, attributes in fields.items():
        assert "label" in attributes, f"{field} has no label"
        assert attributes.get("type", "GAUGE") in {"GAUGE", "DERIVE", "COUNTER", "ABSOLUTE"}
        if attributes.get("type") in {"DERIVE", "COUNTER"}:
            assert attributes.get("min") == "0", f"{field}: a counter reset must not read as a huge drop"
        for level in ("warning", "critical"):
            if level in attributes:
                assert re.fullmatch(LEVEL, attributes[level]), f"{field}.{level} is not a range"
    return fields


def parse_values(output: str, fields: dict[str, dict[str, str]]) -> dict[str, float | None]:
    """Check fetch output: one `<field>.value <number|U>` per configured field, nothing else."""
    values: dict[str, float | None] = {}
    for line in output.splitlines():
        match = re.fullmatch(rf"({FIELD})\.value ({NUMBER}|U)", line)
        assert match, f"not a value line: {line!r}"
        values[match[1]] = None if match[2] == "U" else float(match[2])
    assert set(values) == set(fields)
    return values


def known_values(output: str, fields: dict[str, dict[str, str]]) -> dict[str, float]:
    """Like parse_values, for a plugin whose data source is up: no field may be unknown."""
    values = parse_values(output, fields)
    known = {field: value for field, value in values.items() if value is not None}
    assert known == values, f"unknown values: {values}"
    return known


def parse_autoconf(output: str) -> str:
    assert re.fullmatch(r"yes|no(?: \(.+\))?", output.strip()), f"not an autoconf answer: {output!r}"
    return output.strip()


def crosses(value: float, level: str) -> bool:
    """Whether `value` is outside a Munin warning/critical range (`max`, `min:`, or `min:max`)."""
    low, _, high = level.rpartition(":") if ":" in level else ("", "", level)
    return (bool(low) and value < float(low)) or (bool(high) and value > float(high))


@pytest.fixture(scope="module")
def plugin_dir(stack):
    """The plugins as munin-node's servicedir holds them: <site>_<service> symlinks to the one script."""
    directory = stack.run_dir / "plugins"
    directory.mkdir()
    for service in SERVICES:
        (directory / f"{SITE}_{service}").symlink_to(PLUGIN)
    return directory


def plugin_env(stack: Stack) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "METRICS_URL": f"{stack.url}/internal/metrics",
        "GUNICORN_PIDFILE": str(stack.pidfile),
    }


def run_plugin(plugin_dir: Path, service: str, *args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [str(plugin_dir / f"{SITE}_{service}"), *args], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


@pytest.mark.parametrize("service", SERVICES)
def test_each_plugin_prints_protocol_valid_config_values_and_autoconf(stack, plugin_dir, exercised, service):
    env = plugin_env(stack)
    fields = parse_config(run_plugin(plugin_dir, service, "config", env=env))
    known_values(run_plugin(plugin_dir, service, env=env), fields)
    assert parse_autoconf(run_plugin(plugin_dir, service, "autoconf", env=env)) == "yes"


def test_plugins_reach_gunicorn_over_its_unix_socket(stack, plugin_dir):
    env = {
        **plugin_env(stack),
        # The socket wins: a URL nothing listens on would fail.
        "METRICS_URL": f"http://127.0.0.1:{closed_port()}/internal/metrics",
        "METRICS_SOCKET": str(stack.run_dir / "gunicorn.sock"),
    }
    fields = parse_config(run_plugin(plugin_dir, "beat_lag", "config", env=env))
    stack.write_heartbeat(age_seconds=30)

    age = known_values(run_plugin(plugin_dir, "beat_lag", env=env), fields)["age"]

    assert 30 <= age < float(fields["age"]["warning"])


def test_autoconf_says_no_with_the_reason_when_the_app_is_unreachable(stack, plugin_dir):
    env = {**plugin_env(stack), "METRICS_URL": f"http://127.0.0.1:{closed_port()}/internal/metrics"}
    answer = parse_autoconf(run_plugin(plugin_dir, "queues", "autoconf", env=env))
    assert answer.startswith("no (app metrics unreachable")


def test_plugins_report_unknown_values_when_the_app_is_unreachable(stack, plugin_dir):
    env = {**plugin_env(stack), "METRICS_URL": f"http://127.0.0.1:{closed_port()}/internal/metrics"}
    result = subprocess.run(
        [str(plugin_dir / f"{SITE}_beats")], env=env, capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.splitlines() == ["sending.value U", "standby.value U"]


def test_queue_plugin_graphs_the_default_queue_with_warning_and_critical_levels(stack, plugin_dir):
    fields = parse_config(run_plugin(plugin_dir, "queues", "config", env=plugin_env(stack)))
    assert fields["celery"]["warning"] == "100"
    assert fields["celery"]["critical"] == "1000"


def test_gunicorn_plugin_counts_the_workers_of_the_master_in_the_pidfile(stack, plugin_dir):
    values = known_values(run_plugin(plugin_dir, "gunicorn_workers", env=plugin_env(stack)), {"workers": {}})
    assert values == {"workers": float(GUNICORN_WORKERS)}


def test_gunicorn_plugin_counts_the_workers_of_a_master_run_by_another_user():
    """The shipped plugin-conf.d runs the plugins as `nobody` while gunicorn runs as the app's user:
    signal 0 to the master then fails with EPERM, which still means it is alive."""
    if os.geteuid() != 0:
        pytest.skip("running the plugin as another user needs root")
    folder = Path(tempfile.mkdtemp(prefix="munin-"))  # pytest's tmp_path is closed to nobody
    folder.chmod(0o755)
    # A master with two children, as gunicorn's would be, owned by root.
    master = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time; "
         "[subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']) for _ in range(2)]; "
         "time.sleep(60)"],
        start_new_session=True,
    )  # fmt: skip
    try:
        pidfile = folder / "gunicorn.pid"
        pidfile.write_text(f"{master.pid}\n")
        plugin = folder / f"{SITE}_gunicorn_workers"
        # A copy, not a link: the checkout itself may be closed to nobody (a clone in a tmp_path).
        shutil.copy(PLUGIN, plugin)
        plugin.chmod(0o755)
        command = ["runuser", "-u", "nobody", "--", "env", f"GUNICORN_PIDFILE={pidfile}", str(plugin)]
        deadline = time.monotonic() + 30
        while True:  # until the master has started both children
            result = subprocess.run(command, capture_output=True, text=True, timeout=30, cwd="/")
            if result.stdout.strip() == "workers.value 2" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert result.stdout.strip() == "workers.value 2", result.stdout + result.stderr
    finally:
        os.killpg(master.pid, signal.SIGKILL)
        master.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def test_beat_lag_plugin_crosses_its_warning_level_when_the_heartbeat_is_old(stack, plugin_dir):
    env = plugin_env(stack)
    fields = parse_config(run_plugin(plugin_dir, "beat_lag", "config", env=env))
    warning, critical = fields["age"]["warning"], fields["age"]["critical"]

    stack.write_heartbeat(age_seconds=30)
    fresh = known_values(run_plugin(plugin_dir, "beat_lag", env=env), fields)["age"]
    stack.write_heartbeat(age_seconds=float(warning) + 60)
    stale = known_values(run_plugin(plugin_dir, "beat_lag", env=env), fields)["age"]

    assert not crosses(fresh, warning)
    assert crosses(stale, warning)
    assert not crosses(stale, critical)


# --- munin-run, as munin-node runs the plugins -----------------------------------------------
def munin_run(service_dir: Path, conf_dir: Path, plugin: str, *args: str) -> str:
    path = shutil.which("munin-run") or "/usr/sbin/munin-run"
    if not Path(path).exists():
        pytest.fail("munin-run is not installed: run `make system-deps` (Debian's munin-node)")
    command = [path, "--servicedir", str(service_dir), "--sconfdir", str(conf_dir), plugin, *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def shipped_plugin_conf(name: str) -> str:
    # Plugins run as root here: the plugins and the stack's socket sit in the test's private
    # temporary directory, which the shipped users cannot enter.
    shipped = (ROOT / "monitoring" / "munin" / "plugin-conf.d" / name).read_text().replace("SLUG", SITE)
    return shipped.replace("user nobody", "user root").replace(f"group {SITE}", "group root")


@pytest.fixture(scope="module")
def munin_conf_dir(stack):
    directory = stack.run_dir / "plugin-conf.d"
    directory.mkdir()
    shipped = shipped_plugin_conf("app")
    shipped = shipped.replace(f"/run/{SITE}/gunicorn.sock", str(stack.run_dir / "gunicorn.sock"))
    shipped = shipped.replace(f"/run/{SITE}/gunicorn.pid", str(stack.pidfile))
    (directory / SITE).write_text(shipped)
    return directory


@pytest.mark.parametrize("service", SERVICES)
def test_munin_run_executes_each_plugin_with_the_shipped_plugin_conf(
    plugin_dir, munin_conf_dir, exercised, service
):
    fields = parse_config(munin_run(plugin_dir, munin_conf_dir, f"{SITE}_{service}", "config"))
    known_values(munin_run(plugin_dir, munin_conf_dir, f"{SITE}_{service}"), fields)
    assert parse_autoconf(munin_run(plugin_dir, munin_conf_dir, f"{SITE}_{service}", "autoconf")) == "yes"


# --- request rates: Munin's stock nginx plugins on the deploy's nginx ------------------------
@pytest.fixture(scope="module")
def nginx(stack):
    """The deploy's nginx site, rendered for plain HTTP in front of the stack's gunicorn; its URL."""
    build = stack.run_dir / "nginx-build"
    port = free_port()
    render_env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(stack.run_dir)),
        "DEPLOY_BUILD_DIR": str(build),
        "NGINX_LISTEN": f"127.0.0.1:{port}",
        "NGINX_TLS": "off",
        "NGINX_WORKER_PROCESSES": "1",
        "NGINX_UPSTREAM_SERVERS": stack.url.removeprefix("http://"),
    }
    rendered = subprocess.run(
        [sys.executable, "-m", "deploy.render"], cwd=ROOT, env=render_env, capture_output=True, text=True
    )
    assert rendered.returncode == 0, rendered.stderr
    for directory in ("log", "run"):
        (build / directory).mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        ["nginx", "-c", str(build / "nginx" / "nginx.conf"), "-e", str(build / "log" / "error.log")],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/nginx_status", timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process_group(process)


@pytest.fixture(scope="module")
def nginx_munin(stack, nginx):
    """munin-node's servicedir and plugin-conf.d for the stock nginx plugins, with the shipped conf."""
    services, conf = stack.run_dir / "nginx-plugins", stack.run_dir / "nginx-plugin-conf.d"
    services.mkdir()
    conf.mkdir()
    for plugin in ("nginx_request", "nginx_status"):
        (services / plugin).symlink_to(STOCK_NGINX_PLUGINS / plugin)
    shipped = shipped_plugin_conf("nginx")
    assert "env.url http://127.0.0.1/nginx_status" in shipped
    conf_text = shipped.replace("http://127.0.0.1/", f"{nginx}/") + "user root\n"
    (conf / "nginx").write_text(conf_text)
    return services, conf


@pytest.mark.parametrize("plugin", ["nginx_request", "nginx_status"])
def test_munin_run_executes_the_stock_nginx_plugins_with_the_shipped_plugin_conf(nginx_munin, plugin):
    fields = parse_config(munin_run(*nginx_munin, plugin, "config"))
    known_values(munin_run(*nginx_munin, plugin), fields)
    assert parse_autoconf(munin_run(*nginx_munin, plugin, "autoconf")) == "yes"


def get_through(nginx: str, path: str) -> int:
    # The site's name: nginx drops a request for any other Host without an answer.
    request = urllib.request.Request(nginx + path, headers={"Host": "localhost"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def test_nginx_request_plugin_counts_the_requests_nginx_answered(nginx, nginx_munin):
    fields = parse_config(munin_run(*nginx_munin, "nginx_request", "config"))
    before = known_values(munin_run(*nginx_munin, "nginx_request"), fields)["request"]

    statuses = [get_through(nginx, "/healthz") for _ in range(5)]
    after = known_values(munin_run(*nginx_munin, "nginx_request"), fields)["request"]

    assert statuses == [200] * 5
    # Each poll of stub_status is a request to nginx too.
    assert after - before == len(statuses) + 1
