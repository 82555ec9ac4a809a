"""`make bench`: the production stack under load, each case measured against the machine's ceiling.

    python -m bench.run          # what `make bench` runs

It starts, on free local ports and all its own: a Redis, a fresh PostgreSQL database (created
from DATABASE_URL's server, dropped at the end) and the production stack of `make up` (nginx,
gunicorn, Celery worker and beat under supervisord, production settings). Beside it, the same
gunicorn and nginx configs serve a bare WSGI hello-world: the ceiling every case is divided by,
so results compare across machines. It seeds BENCH_ARTICLES articles with `seed_demo`, rebuilds
the autocomplete index, warms each case up, then runs BENCH_ROUNDS interleaved rounds of wrk and
reports medians. Per-client rate limits (nginx limit_req, DRF throttles) are off, as all the load
comes from one address; every other setting is production's.

Output: docs/performance.md (dated, with the machine, each case beside the previous run's ratio,
and the Celery figures; also printed), every round in bench/results.json, and build/bench/
(results.json, the stack's logs). Everything it started is stopped, and checked to be gone,
before it exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

from deploy import render
from deploy import stack as deploy_stack
from tests.support.processes import process_table

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "bench"
RESULTS = ROOT / "bench" / "results.json"
PERFORMANCE = ROOT / "docs" / "performance.md"
REPORT_LUA = Path(__file__).resolve().parent / "report.lua"
STARTUP_TIMEOUT = 180
T = TypeVar("T")
# A header that keeps a request out of nginx's micro-cache and means nothing to Django without
# replicas (the read-your-writes cookie): the Django-level cases measure Django, not nginx's cache.
BYPASS_MICROCACHE = "Cookie: recent_write=1"
# What a browser with an analytics script sends: nginx's micro-cache still answers it.
THIRD_PARTY_COOKIE = "Cookie: _ga=GA1.1.1234567890.1700000000; _gid=GA1.1.987654321.1700000000"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


@dataclass(frozen=True)
class Settings:
    articles: int = field(default_factory=lambda: _env_int("BENCH_ARTICLES", 10_000))
    # Titles in the autocomplete index: the published articles, padded with synthetic titles.
    autocomplete_titles: int = field(default_factory=lambda: _env_int("BENCH_AUTOCOMPLETE_TITLES", 100_000))
    duration: int = field(default_factory=lambda: _env_int("BENCH_DURATION", 5))
    warmup: int = field(default_factory=lambda: _env_int("BENCH_WARMUP", 2))
    rounds: int = field(default_factory=lambda: _env_int("BENCH_ROUNDS", 3))
    connections: int = field(default_factory=lambda: _env_int("BENCH_CONNECTIONS", 32))
    threads: int = field(default_factory=lambda: _env_int("BENCH_THREADS", 2))
    celery_roundtrips: int = field(default_factory=lambda: _env_int("BENCH_CELERY_ROUNDTRIPS", 300))
    celery_tasks: int = field(default_factory=lambda: _env_int("BENCH_CELERY_TASKS", 5_000))
    # Each Celery round starts two workers and runs 2 x BENCH_CELERY_TASKS tasks: three rounds keep
    # the bench short, and their median ratio is steadier than one round's, which moves a lot
    # between runs on a shared machine.
    celery_rounds: int = field(default_factory=lambda: _env_int("BENCH_CELERY_ROUNDS", 3))


@dataclass(frozen=True)
class Case:
    name: str
    label: str
    path: str
    server: str = "stack"  # or "ceiling": the hello-world behind its own nginx
    headers: tuple[str, ...] = (BYPASS_MICROCACHE,)
    unique: bool = False  # "{n}" in the path becomes a counter: every request a cache miss
    min_ratio: float | None = None
    max_p50_ms: float | None = None
    # A latency case: one connection, so p50 is the time of one request, not of a queue of them.
    connections: int | None = None


# ----------------------------------------------------------------------------- processes


class Processes:
    """Every process the bench started, and their descendants, so none can outlive it."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []
        self.seen: set[tuple[int, int]] = set()

    def start(self, command: list[str], log: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
            )
        self.started.append(process)
        self.remember()
        return process

    def remember(self) -> None:
        table = process_table()
        frontier = [process.pid for process in self.started if process.pid in table]
        for pid in frontier:
            self.seen.add((pid, table[pid][1]))
        while frontier:
            parent = frontier.pop()
            for pid, (ppid, start) in table.items():
                if ppid == parent and (pid, start) not in self.seen:
                    self.seen.add((pid, start))
                    frontier.append(pid)

    def alive(self) -> set[tuple[int, int]]:
        table = process_table()
        return {(pid, start) for pid, start in self.seen if pid in table and table[pid][1] == start}

    def stop(self, process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        if process.poll() is not None:
            return
        self.remember()
        with contextlib.suppress(OSError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def stop_all(self) -> list[int]:
        """Stop everything still running, newest first; return the pids that had to be killed."""
        for process in reversed(self.started):
            self.stop(process)
        deadline = time.monotonic() + 10
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        leftovers = sorted(pid for pid, _ in self.alive())
        for pid in leftovers:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        return leftovers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Any, what: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BenchError(f"{what}: the process exited with {process.returncode}")
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.3)
    raise BenchError(f"{what}: not ready after {timeout:.0f} s")


class BenchError(Exception):
    pass


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - a local URL we built
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


# ----------------------------------------------------------------------------- the services


def _postgres_base_url() -> str:
    url = os.environ.get("DATABASE_URL", "") or render.load_env().get("DATABASE_URL", "")
    return (
        url if url.startswith(("postgres://", "postgresql://")) else "postgres://postgres@127.0.0.1:5432/app"
    )


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    base = urlsplit(_postgres_base_url())
    name = f"{base.path.strip('/') or 'app'}_bench_{os.getpid()}"
    admin_url = urlunsplit(base._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(base._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_redis(processes: Processes, directory: Path) -> str:
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(directory)]
    process = processes.start(command, directory / "redis.log")

    def listening() -> bool:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True

    wait_for(listening, "redis-server", 10, process)
    return f"redis://127.0.0.1:{port}"


def bench_env(database_url: str, redis_url: str, build: Path, port: int) -> dict[str, str]:
    """The stack's environment: the operator's, production settings, rate limits off, own ports."""
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        # The Celery round trip reads each task's result.
        CELERY_RESULT_BACKEND=f"{redis_url}/3",
        DEPLOY_BUILD_DIR=str(build),
        STATIC_ROOT=str(build / "static"),
        MEDIA_ROOT=str(build / "media"),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        NGINX_LISTEN=f"127.0.0.1:{port}",
        NGINX_TLS="off",
        # All the load comes from one address: per-client limits would measure themselves.
        NGINX_LIMIT_REQ="off",
        API_THROTTLE_ANON="off",
        API_THROTTLE_USER="off",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return deploy_stack.stack_env(env)


def start_stack(processes: Processes, env: dict[str, str], build: Path, port: int) -> None:
    process = processes.start(
        [sys.executable, "-m", "deploy.stack", "up"], build / "stack-up.log", cwd=ROOT, env=env
    )
    worker_log = build / "log" / "worker.log"

    def ready() -> bool:
        status, _, _ = get(f"http://127.0.0.1:{port}/healthz")
        return status == 200 and worker_log.exists() and " ready." in worker_log.read_text(errors="replace")

    wait_for(ready, f"the stack (see {build / 'stack-up.log'})", STARTUP_TIMEOUT, process)
    processes.remember()


def _web_environment(context: dict[str, object]) -> dict[str, str]:
    """The environment supervisor gives gunicorn (the rendered `environment=` line), as a dict."""
    pairs = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', str(context["WEB_ENVIRONMENT"]))
    return {key: value.replace('\\"', '"').replace("%%", "%") for key, value in pairs}


def start_ceiling(processes: Processes, env: dict[str, str], build: Path, port: int) -> None:
    """The hello-world app: the project's gunicorn config behind its nginx config, on its own port."""
    hello_env = dict(env, DEPLOY_BUILD_DIR=str(build), NGINX_LISTEN=f"127.0.0.1:{port}")
    context, _ = render.render(hello_env)
    hello_env.update(_web_environment(context))
    gunicorn = str(Path(str(context["VENV_BIN"])) / "gunicorn")
    command = [gunicorn, "-c", "deploy/gunicorn.conf.py", "bench.hello:application"]
    processes.start(command, build / "log" / "web.log", cwd=ROOT, env=hello_env)
    nginx = processes.start(
        [
            str(context["NGINX_BIN"]),
            "-c",
            str(build / "nginx" / "nginx.conf"),
            "-e",
            str(Path(str(context["NGINX_LOG_DIR"])) / "nginx-error.log"),
        ],
        build / "log" / "nginx.log",
        cwd=ROOT,
        env=hello_env,
    )
    wait_for(lambda: get(f"http://127.0.0.1:{port}/")[0] == 200, "the ceiling app", 60, nginx)
    processes.remember()


def python(env: dict[str, str], *args: str, timeout: float = 900) -> str:
    """Run Python with the stack's environment (a management command, a bench module); its output."""
    result = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"{' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result.stdout


def manage(env: dict[str, str], *args: str) -> None:
    python(env, "manage.py", *args, timeout=600)


# ----------------------------------------------------------------------------- load


def run_wrk(settings: Settings, url: str, case: Case, duration: int) -> dict[str, float]:
    env = dict(os.environ)
    connections = case.connections or settings.connections
    command = [
        "wrk",
        "-t",
        str(min(settings.threads, connections)),
        "-c",
        str(connections),
        "-d",
        f"{duration}s",
        "--timeout",
        "5s",
        "-s",
        str(REPORT_LUA),
    ]
    for header in case.headers:
        command += ["-H", header]
    if case.unique:
        env["BENCH_UNIQUE"] = urlsplit(url).path + "?" + urlsplit(url).query
    result = subprocess.run(
        [*command, url.replace("{n}", "0")],
        capture_output=True,
        text=True,
        env=env,
        timeout=duration + 60,
        check=False,
    )
    line = next((line for line in result.stdout.splitlines() if line.startswith("BENCH_JSON ")), None)
    if result.returncode != 0 or line is None:
        raise BenchError(f"wrk failed on {case.name}:\n{result.stdout}\n{result.stderr}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = raw["duration_us"] / 1e6
    return {
        "rps": raw["requests"] / seconds,
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "errors": raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        # wrk counts every answer with a status of 400 or more; the pre-check rules out 3xx.
        "non_2xx": raw["status"],
        "requests": raw["requests"],
    }


def check_case(url: str, case: Case) -> int:
    headers = dict(header.split(": ", 1) for header in case.headers)
    status, _, _ = get(url.replace("{n}", "0"), headers)
    return status


def summarise(case: Case, rounds: list[dict[str, float]], ceilings: list[float]) -> dict[str, Any]:
    ratios = [result["rps"] / ceiling for result, ceiling in zip(rounds, ceilings, strict=True)]
    summary: dict[str, Any] = {
        "label": case.label,
        "path": case.path,
        "rps": statistics.median(result["rps"] for result in rounds),
        "p50_ms": statistics.median(result["p50_ms"] for result in rounds),
        "p99_ms": statistics.median(result["p99_ms"] for result in rounds),
        "errors": int(sum(result["errors"] for result in rounds)),
        "non_2xx": int(sum(result["non_2xx"] for result in rounds)),
        "requests": int(sum(result["requests"] for result in rounds)),
        "ratio": statistics.median(ratios),
        "rounds": rounds,
        "ratios": ratios,
    }
    # A round that got no answer at all reports no errors either: it must not pass as a result.
    answered = all(result["requests"] > 0 for result in rounds)
    checks = [summary["errors"] == 0, summary["non_2xx"] == 0, answered]
    if case.min_ratio is not None:
        summary["target"] = f"ratio >= {case.min_ratio}"
        checks.append(summary["ratio"] >= case.min_ratio)
    if case.max_p50_ms is not None:
        summary["target"] = f"p50 < {case.max_p50_ms} ms"
        checks.append(summary["p50_ms"] < case.max_p50_ms)
    summary["met"] = all(checks)
    return summary


def cases(slug: str, prefix: str, token: str) -> list[Case]:
    return [
        Case("ceiling", "bare WSGI (ceiling)", "/", server="ceiling"),
        Case("healthz", "/healthz", "/healthz", min_ratio=0.70),
        Case(
            "api_list_uncached",
            "API list, uncached",
            "/api/v1/articles/?bench={n}",
            unique=True,
            min_ratio=0.25,
        ),
        Case(
            "api_list_cached",
            "API list, analytics cookie",
            "/api/v1/articles/",
            headers=(THIRD_PARTY_COOKIE,),
            min_ratio=4.0,
        ),
        Case(
            "api_list_cached_token",
            "API list, cached, signed in",
            "/api/v1/articles/",
            headers=(BYPASS_MICROCACHE, f"Authorization: Token {token}"),
        ),
        Case("api_detail", "API detail", f"/api/v1/articles/{slug}/"),
        Case(
            "autocomplete",
            "autocomplete, 1 connection",
            f"/api/v1/articles/autocomplete/?q={quote(prefix)}",
            max_p50_ms=5.0,
            connections=1,
        ),
        Case("html_list", "HTML list page", "/articles/"),
        Case(
            "api_list_microcache",
            "API list, nginx micro-cache",
            "/api/v1/articles/",
            headers=(),
            min_ratio=4.0,
        ),
    ]


# ----------------------------------------------------------------------------- celery

# Celery's stock behaviour: early acks, no requeue of a dead process's task, 4 messages reserved.
RELIABILITY_OFF = {
    "CELERY_TASK_ACKS_LATE": "false",
    "CELERY_TASK_REJECT_ON_WORKER_LOST": "false",
    "CELERY_WORKER_PREFETCH_MULTIPLIER": "4",
}


def start_worker(processes: Processes, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A worker started as supervisor starts the stack's (same command), with `env`'s settings."""
    celery = str(Path(sys.executable).parent / "celery")
    command = [celery, "-A", "config", "worker", "--loglevel=INFO", f"--hostname=bench-{log.stem}@%h"]
    process = processes.start(command, log, cwd=ROOT, env=env)
    wait_for(lambda: log.exists() and " ready." in log.read_text(errors="replace"), log.stem, 120, process)
    return process


def probe(env: dict[str, str], kind: str, count: int) -> dict[str, float]:
    return run_json(env, "bench.celery_probe", kind, str(count))


def run_json(env: dict[str, str], module: str, *args: str) -> dict[str, Any]:
    """Run a bench helper module with the stack's environment; return its BENCH_JSON line."""
    output = python(env, "-m", module, *args)
    line = next((line for line in output.splitlines() if line.startswith("BENCH_JSON ")), None)
    if line is None:
        raise BenchError(f"{module} {' '.join(args)} printed no BENCH_JSON line:\n{output[-2000:]}")
    return json.loads(line.removeprefix("BENCH_JSON "))


def bench_celery(
    settings: Settings, processes: Processes, env: dict[str, str], build: Path
) -> dict[str, Any]:
    """Round trip and throughput of no-op tasks, production reliability settings on, then off."""
    # The stack's own worker makes way for workers started with each setting, the same command.
    context = render.build_context(env)
    deploy_stack._supervisorctl(context, "stop", f"{context['SLUG']}:worker")
    modes = {"on": env, "off": dict(env, **RELIABILITY_OFF)}
    roundtrips: list[dict[str, float]] = []
    throughput: dict[str, list[float]] = {"on": [], "off": []}
    for number in range(1, settings.celery_rounds + 1):
        print(f"bench: celery round {number} of {settings.celery_rounds}", flush=True)
        # Alternate which setting goes first, so a machine getting busier or quieter during the
        # run does not favour one of them.
        order = list(modes.items()) if number % 2 else list(reversed(modes.items()))
        for mode, mode_env in order:
            worker = start_worker(processes, mode_env, build / f"worker-{mode}-{number}.log")
            try:
                if mode == "on":
                    roundtrips.append(probe(mode_env, "roundtrip", settings.celery_roundtrips))
                figures = probe(mode_env, "throughput", settings.celery_tasks)
                throughput[mode].append(figures["tasks_per_s"])
            finally:
                processes.stop(worker)
    ratios = [on / off for on, off in zip(throughput["on"], throughput["off"], strict=True)]
    summary: dict[str, Any] = {
        "roundtrip_count": settings.celery_roundtrips,
        "roundtrip_p50_ms": statistics.median(result["p50_ms"] for result in roundtrips),
        "roundtrip_p99_ms": statistics.median(result["p99_ms"] for result in roundtrips),
        "tasks": settings.celery_tasks,
        "tasks_per_s_reliable": statistics.median(throughput["on"]),
        "tasks_per_s_stock": statistics.median(throughput["off"]),
        "reliable_to_stock": statistics.median(ratios),
        "rounds": {"roundtrip": roundtrips, "throughput": throughput, "ratios": ratios},
    }
    summary["met"] = {
        "round trip p50 < 4 ms": summary["roundtrip_p50_ms"] < 4.0,
        "reliable >= 0.85 x stock": summary["reliable_to_stock"] >= 0.85,
    }
    return summary


# ----------------------------------------------------------------------------- output


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _previous_ratios(text: str) -> tuple[str, dict[str, str]]:
    """The date and the ratio of each case in the report being replaced, to show beside the new ones."""
    date = re.search(r"\d{4}-\d{2}-\d{2}", text)
    ratios: dict[str, str] = {}
    columns: list[str] = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or set(cells[0]) <= {"-", ":"}:
            continue
        if cells[0] == "Case":
            columns = cells
        elif "ratio" in columns and len(cells) == len(columns):
            ratios[cells[0]] = cells[columns.index("ratio")]
    return (date.group(0) if date else ""), ratios


def performance_report(results: dict[str, Any], previous: str = "") -> str:
    """docs/performance.md: the run's date, machine, cases and Celery figures, in Markdown."""
    machine, settings, celery = results["machine"], results["settings"], results["celery"]
    previous_date, previous_ratios = _previous_ratios(previous)
    lines = [
        "# Performance",
        "",
        f"Written by `make bench` (`bench/run.py`) on {results['date']}; the next run replaces this file.",
        'How the bench works and how to read the table: README, "Benchmarks".',
        "",
        f"Machine: {machine['cpus']} usable CPUs ({machine['cpu_model']}), {machine['platform']}, "
        f"Python {machine['python']}; load average {machine['load_average']:.2f} when the run began "
        "(wrk shares the cores, and a busy machine gives lower figures).",
        "",
        f"Run: {settings['articles']:,} articles, {settings['autocomplete_titles']:,} autocomplete titles, "
        f"{settings['rounds']} rounds of {settings['duration']} s with {settings['connections']} "
        f"connections, medians of the rounds; {results['seconds']:.0f} s in all.",
        "",
        f"| Case | req/s | ratio | previous ratio ({previous_date or 'none'}) | p50 ms | p99 ms "
        "| errors | target | met |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for case in results["cases"].values():
        lines.append(
            f"| {case['label']} | {case['rps']:,.0f} | {case['ratio']:.2f} "
            f"| {previous_ratios.get(case['label'], '-')} | {case['p50_ms']:.2f} | {case['p99_ms']:.2f} "
            f"| {case['errors'] + case['non_2xx']} | {case.get('target', '')} "
            f"| {'yes' if case['met'] else 'NO'} |"
        )
    lines += [
        "",
        f"Celery, no-op task, one worker: round trip p50 {celery['roundtrip_p50_ms']:.2f} ms, "
        f"p99 {celery['roundtrip_p99_ms']:.2f} ms ({celery['roundtrip_count']} in a row); "
        f"{celery['tasks']:,} tasks at {celery['tasks_per_s_reliable']:,.0f}/s with the reliability "
        f"settings, {celery['tasks_per_s_stock']:,.0f}/s with Celery's stock ones "
        f"(ratio {celery['reliable_to_stock']:.2f}).",
        "",
        "| Celery target | met |",
        "| --- | --- |",
        *(f"| {name} | {'yes' if ok else 'NO'} |" for name, ok in celery["met"].items()),
    ]
    return "\n".join(lines) + "\n"


def write_performance(results: dict[str, Any], path: Path) -> str:
    """Replace the report at `path` with this run's, the replaced run's ratios beside the new ones."""
    text = performance_report(results, path.read_text() if path.exists() else "")
    path.write_text(text)
    return text


# ----------------------------------------------------------------------------- main


def bench(settings: Settings, processes: Processes, database_url: str) -> dict[str, Any]:
    redis_url = start_redis(processes, OUT / "redis")
    stack_port, ceiling_port = free_port(), free_port()
    env = bench_env(database_url, redis_url, OUT / "stack", stack_port)
    print(f"bench: starting the stack on 127.0.0.1:{stack_port} and the ceiling on 127.0.0.1:{ceiling_port}")
    start_stack(processes, env, OUT / "stack", stack_port)
    start_ceiling(processes, env, OUT / "ceiling", ceiling_port)

    started = time.monotonic()
    print(f"bench: seeding {settings.articles} articles", flush=True)
    manage(env, "seed_demo", "--articles", str(settings.articles), "--seed", "8")
    indexed = run_json(env, "bench.fill_autocomplete", str(settings.autocomplete_titles))["titles"]
    seconds = time.monotonic() - started
    print(f"bench: seeded in {seconds:.0f} s ({indexed} titles in autocomplete)", flush=True)

    base = f"http://127.0.0.1:{stack_port}"
    _, _, body = get(f"{base}/api/v1/articles/", {"Cookie": "bench=1"})
    first = json.loads(body)["results"][0]
    token = run_json(env, "bench.api_token")["token"]
    all_cases = cases(first["slug"], first["title"][:3].lower(), token)

    def url(case: Case) -> str:
        port = ceiling_port if case.server == "ceiling" else stack_port
        return f"http://127.0.0.1:{port}{case.path}"

    for case in all_cases:
        status = check_case(url(case), case)
        if status != 200:
            raise BenchError(f"{case.name}: GET {case.path} answered {status}, not 200")
        run_wrk(settings, url(case), case, settings.warmup)
        if case.name in {"api_list_cached", "api_list_microcache"}:  # nginx's micro-cache must answer
            headers = dict(header.split(": ", 1) for header in case.headers)
            cache_status = get(url(case), headers)[1].get("X-Cache-Status")
            if cache_status not in {"HIT", "UPDATING", "STALE"}:
                raise BenchError(
                    f"the micro-cache answered X-Cache-Status: {cache_status} (NGINX_MICROCACHE off?)"
                )
    results: dict[str, list[dict[str, float]]] = {case.name: [] for case in all_cases}
    for number in range(1, settings.rounds + 1):
        print(f"bench: round {number} of {settings.rounds}", flush=True)
        for case in all_cases:
            results[case.name].append(run_wrk(settings, url(case), case, settings.duration))
    processes.remember()

    ceilings = [result["rps"] for result in results["ceiling"]]
    summaries = {case.name: summarise(case, results[case.name], ceilings) for case in all_cases}
    for case in all_cases:
        summaries[case.name]["min_ratio"] = case.min_ratio
        summaries[case.name]["max_p50_ms"] = case.max_p50_ms
    celery = bench_celery(settings, processes, env, OUT / "stack" / "log")
    return {"cases": summaries, "celery": celery}


@dataclass
class IsolatedRun(Generic[T]):
    outcome: T | None
    seconds: float
    leftovers: list[int]
    exit_code: int  # what the command exits with when there is no outcome


def run_isolated(name: str, out: Path, work: Callable[[Processes, str], T]) -> IsolatedRun[T]:
    """Run `work` on a fresh database and its own processes, all stopped after, as `make <name>`.

    Checks the Debian tools first (exit code 2 when one is missing), empties `out`, and prints
    what went wrong (exit code 1) or which processes had to be killed.
    """
    missing = [
        tool
        for tool in ("wrk", "redis-server", "nginx")
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists()
    ]
    if missing:
        print(
            f"{name}: {', '.join(missing)} not found; on Debian: apt-get install -y {' '.join(missing)}",
            file=sys.stderr,
        )
        return IsolatedRun(None, 0.0, [], 2)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    began = time.monotonic()
    processes = Processes()
    outcome: T | None = None
    leftovers: list[int] = []
    try:
        with fresh_database() as database_url:
            try:
                outcome = work(processes, database_url)
            finally:
                leftovers = processes.stop_all()
    except BenchError as error:
        print(f"{name}: {error}", file=sys.stderr)
    if leftovers:
        print(f"{name}: had to kill leftover processes {leftovers}", file=sys.stderr)
    return IsolatedRun(outcome, round(time.monotonic() - began, 1), leftovers, 1)


def main() -> int:
    settings = Settings()
    load_average = os.getloadavg()[0]
    run = run_isolated("bench", OUT, lambda processes, database_url: bench(settings, processes, database_url))
    outcome = run.outcome
    if outcome is None:
        return run.exit_code
    results = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "cpu_model": cpu_model(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average": load_average,
        },
        "settings": settings.__dict__,
        "seconds": run.seconds,
        "leftover_processes": run.leftovers,
        **outcome,
    }
    text = json.dumps(results, indent=2)
    RESULTS.write_text(text + "\n")
    (OUT / "results.json").write_text(text + "\n")
    print()
    print(write_performance(results, PERFORMANCE))
    print(
        f"bench: {results['seconds']:.0f} s; the report in {PERFORMANCE.relative_to(ROOT)}, "
        f"every round in {RESULTS.relative_to(ROOT)} and {(OUT / 'results.json').relative_to(ROOT)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
