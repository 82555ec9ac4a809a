"""`make soak`: the production stack of `make bench` under a steady mixed load (bench/soak.lua) at
SOAK_LOAD of its measured capacity, then SOAK_WORKER_TASKS no-op tasks through the worker.

It fails on any error (a failed request, an ERROR log line, a restarted process, a task not run)
and on memory growth: of gunicorn and the worker past SOAK_MAX_GROWTH after the warm-up, of the
worker's main process past TaskRun.growth_limit_kib over the task run's second half. Recycling is
off for the run: it would hide the very leak this looks for. build/soak/ keeps results and logs.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis
from celery import Celery

from bench.run import (
    ROOT,
    BenchError,
    Processes,
    bench_env,
    from_env,
    get,
    manage,
    python,
    run_isolated,
    start_stack,
    wrk,
)
from deploy import render
from deploy import stack as deploy_stack
from tests.support.net import free_port
from tests.support.processes import descendants

OUT = ROOT / "build" / "soak"
SOAK_LUA = Path(__file__).resolve().parent / "soak.lua"
PROGRAMS = ("web", "worker")
QUEUE_DRAIN_TIMEOUT = 120
# The no-op task driven through the worker to watch its main process (apps/core/tasks/queueing.py).
PING_TASK = "core.ping"
# The limit on the worker main process's growth over the second half of a task run (see
# TaskRun.growth_limit_kib): a fixed room for the allocator's steps, plus a per-task allowance
# well below what one leaked timer entry per task cost, so that even a small object kept per task
# (a dict entry keyed by task id) shows over a long enough run.
MAIN_PROCESS_FIXED_KIB = 512.0
MAIN_PROCESS_KIB_PER_TASK = 0.05


@dataclass(frozen=True)
class Settings:
    """Each field can be set as SOAK_<FIELD>, e.g. SOAK_SECONDS=600 (bench.run.from_env)."""

    seconds: int = 180
    interval: int = 15
    warmup_seconds: int = 45
    capacity_seconds: int = 10
    load: float = 0.7
    max_growth: float = 0.10
    articles: int = 2000
    connections: int = 16
    threads: int = 2
    worker_tasks: int = 50_000


# ----------------------------------------------------------------------------- the verdict


@dataclass
class Slice:
    """One wrk run: a slice of the soak."""

    started: float  # seconds since the soak began
    seconds: float
    requests: int
    errors: int  # connect, read, write and timeout errors, and answers of 400 or more
    p50_ms: float
    p99_ms: float
    memory_mb: dict[str, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class TaskRun:
    """No-op tasks run through the worker, and its main process's resident memory meanwhile."""

    tasks: int
    seconds: float
    samples: list[tuple[int, float]] = field(default_factory=list)  # (tasks done, main process KiB)

    def _second_half(self) -> list[tuple[int, float]]:
        # The first half is the warm-up: caches, pools and the allocator's arenas fill up.
        return [sample for sample in self.samples if sample[0] >= self.tasks / 2]

    def growth_kib(self) -> float | None:
        half = self._second_half()
        return half[-1][1] - half[0][1] if len(half) > 1 else None

    def growth_limit_kib(self) -> float:
        half = self._second_half()
        tasks = half[-1][0] - half[0][0] if len(half) > 1 else 0
        return MAIN_PROCESS_FIXED_KIB + MAIN_PROCESS_KIB_PER_TASK * tasks

    def verdict(self) -> tuple[bool, str]:
        growth = self.growth_kib()
        if growth is None:
            return False, f"{self.tasks} tasks, too few samples"
        (first_done, first_kib), (last_done, last_kib) = self._second_half()[0], self.samples[-1]
        limit = self.growth_limit_kib()
        return growth <= limit, (
            f"{self.tasks} tasks in {self.seconds:.0f} s; {first_kib / 1024:.1f} MB after {first_done} "
            f"tasks, {last_kib / 1024:.1f} MB after {last_done} ({growth:+.0f} KiB, limit {limit:.0f})"
        )


def resident_kib(pid: int) -> float:
    """One process's resident memory (VmRSS), in KiB; 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return float(next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0))


def run_ping_tasks(
    broker_url: str, main_pid: int, count: int, *, queue: str = "celery", batch: int = 500
) -> TaskRun:
    """Queue `count` no-op tasks in batches, never more than two batches waiting, and sample the
    resident memory of the worker's main process (`main_pid`) after each batch and at the end."""
    app = Celery(broker=broker_url, set_as_current=False)
    app.conf.task_default_queue = queue
    broker = redis.Redis.from_url(broker_url)
    began = time.monotonic()
    samples: list[tuple[int, float]] = []
    sent = 0
    try:
        with app.producer_or_acquire() as producer:
            while sent < count:
                for _ in range(min(batch, count - sent)):
                    app.send_task(PING_TASK, producer=producer, ignore_result=True)
                sent += min(batch, count - sent)
                waiting = _wait_for_queue(broker, queue, at_most=batch)
                if waiting > batch:
                    raise BenchError(f"the worker left {waiting} tasks queued for {QUEUE_DRAIN_TIMEOUT} s")
                samples.append((sent - waiting, resident_kib(main_pid)))
        _wait_for_queue(broker, queue, at_most=0)
        samples.append((count, resident_kib(main_pid)))
    finally:
        app.close()
        broker.close()
    return TaskRun(tasks=count, seconds=time.monotonic() - began, samples=samples)


def _wait_for_queue(broker: redis.Redis, queue: str, *, at_most: int) -> int:
    """How many messages wait in `queue` once at most `at_most` do, or QUEUE_DRAIN_TIMEOUT has passed."""
    deadline = time.monotonic() + QUEUE_DRAIN_TIMEOUT
    while (waiting := int(broker.llen(queue))) > at_most and time.monotonic() < deadline:  # type: ignore[arg-type]
        time.sleep(0.1)
    return waiting


@dataclass
class Outcome:
    capacity_rps: float
    target_rps: float
    warmup: list[Slice]
    slices: list[Slice]
    baseline_mb: dict[str, float]
    log_errors: dict[str, int]
    tasks_run: int
    restarted: list[str]
    queue_left: int
    max_growth: float
    task_run: TaskRun | None = None


def growth(outcome: Outcome) -> dict[str, float]:
    """Memory growth per program, from the end of the warm-up to the last slice (0.05 = 5%)."""
    final = outcome.slices[-1].memory_mb if outcome.slices else {}
    return {
        program: final[program] / baseline - 1
        for program, baseline in outcome.baseline_mb.items()
        if program in final and baseline > 0
    }


def checks(outcome: Outcome) -> list[tuple[str, bool, str]]:
    """Each pass/fail condition: (name, passed, detail)."""
    load_errors = sum(s.errors for s in outcome.warmup + outcome.slices)
    found = [
        ("no failed request", load_errors == 0, f"{load_errors} errors"),
        (
            "no ERROR in the logs",
            not any(outcome.log_errors.values()),
            ", ".join(f"{name}: {count}" for name, count in outcome.log_errors.items()),
        ),
        ("no process restarted", not outcome.restarted, ", ".join(outcome.restarted) or "none"),
        (
            "every task run",
            outcome.tasks_run > 0 and outcome.queue_left == 0,
            f"{outcome.tasks_run} run, {outcome.queue_left} left in the queue",
        ),
        ("load held", bool(outcome.slices), f"{len(outcome.slices)} slices"),
    ]
    if outcome.task_run is None:
        found.append(("worker main process flat", False, "no task run"))
    else:
        found.append(("worker main process flat", *outcome.task_run.verdict()))
    grown = growth(outcome)
    for program in PROGRAMS:
        if program not in grown:
            found.append((f"{program} memory measured", False, "no sample"))
            continue
        found.append(
            (
                f"{program} memory flat",
                grown[program] <= outcome.max_growth,
                f"{outcome.baseline_mb[program]:.1f} -> {outcome.slices[-1].memory_mb[program]:.1f} MB "
                f"({grown[program]:+.1%}, limit {outcome.max_growth:+.0%})",
            )
        )
    return found


def report(outcome: Outcome) -> tuple[bool, str]:
    lines = [
        f"capacity of the mix: {outcome.capacity_rps:.0f} req/s; soak target: {outcome.target_rps:.0f} req/s",
        "",
        f"{'t (s)':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
        + " ".join(f"{program + ' MB':>10}" for program in PROGRAMS),
    ]
    for kind, slices in (("warm-up", outcome.warmup), ("soak", outcome.slices)):
        for item in slices:
            memory = " ".join(f"{item.memory_mb.get(program, 0):>10.1f}" for program in PROGRAMS)
            lines.append(
                f"{item.started:>7.0f} {item.rps:>8.0f} {item.p50_ms:>8.1f} {item.p99_ms:>8.1f} "
                f"{item.errors:>7} {memory}" + ("  (warm-up)" if kind == "warm-up" else "")
            )
    if outcome.task_run is not None and outcome.task_run.samples:
        samples = outcome.task_run.samples
        shown = samples[:: max(1, len(samples) // 10)]
        shown += [samples[-1]] if shown[-1] != samples[-1] else []
        lines += ["", f"{'tasks':>7} {'worker main MB':>15}   (no-op tasks, recycling off)"]
        lines += [f"{done:>7} {kib / 1024:>15.1f}" for done, kib in shown]
    lines.append("")
    results = checks(outcome)
    for name, passed, detail in results:
        lines.append(f"{'ok  ' if passed else 'FAIL'} {name}: {detail}")
    passed = all(passed for _, passed, _ in results)
    lines.append(f"soak: {'PASSED' if passed else 'FAILED'}")
    return passed, "\n".join(lines)


# ----------------------------------------------------------------------------- measuring


def run_wrk(
    settings: Settings, base: str, seconds: int, env: dict[str, str], delay_ms: float, started: float
) -> Slice:
    raw = wrk(
        f"{base}/",
        seconds,
        settings.connections,
        settings.threads,
        script=SOAK_LUA,
        env={**env, "SOAK_DELAY_MS": f"{delay_ms:.0f}"},
    )
    return Slice(
        started=started,
        seconds=raw["seconds"],
        requests=raw["requests"],
        errors=raw["errors"] + raw["status"],
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
    )


def program_pids(env: dict[str, str]) -> dict[str, set[tuple[int, int]]]:
    """Each program's processes (supervisor's child and its descendants), as (pid, start time)."""
    context = render.build_context(env)
    found: dict[str, set[tuple[int, int]]] = {}
    for program in PROGRAMS:
        output = deploy_stack._supervisorctl(context, "pid", f"{context['SLUG']}:{program}").stdout.strip()
        found[program] = descendants(int(output)) if output.isdigit() else set()
    return found


def _log_since(logs: Path, program: str, offsets: dict[str, int]) -> list[str]:
    path = logs / f"{program}.log"
    if not path.exists():
        return []
    return path.read_bytes()[offsets.get(program, 0) :].decode(errors="replace").splitlines()


def log_error_counts(logs: Path, offsets: dict[str, int]) -> dict[str, int]:
    """ERROR lines written to each program's log since `offsets` (a byte position per log)."""
    return {
        program: sum(
            1
            for line in _log_since(logs, program, offsets)
            if '"level": "ERROR"' in line or '"level": "CRITICAL"' in line
        )
        for program in PROGRAMS
    }


def tasks_succeeded(logs: Path, offsets: dict[str, int]) -> int:
    return sum(1 for line in _log_since(logs, "worker", offsets) if "] succeeded in " in line)


def prepare(env: dict[str, str], base: str) -> dict[str, str]:
    """A user with an API token, and slugs and title prefixes from the seeded data, for soak.lua."""
    issue = (
        "from apps.users.models import User; from apps.users.services import user_token_issue; "
        "print(user_token_issue(user=User.objects.create_user('soak@example.com', 'a-long-passphrase')))"
    )
    token = python(env, "manage.py", "shell", "--no-imports", "-c", issue).strip().splitlines()[-1]
    status, _, body = get(f"{base}/api/v1/articles/?page_size=100", {"Authorization": f"Token {token}"})
    if status != 200:
        raise BenchError(f"GET /api/v1/articles/ answered {status}")
    articles = json.loads(body)["results"]
    slugs = [article["slug"] for article in articles][:50]
    prefixes = sorted({quote(article["title"][:3].lower()) for article in articles})[:20]
    if not slugs or not prefixes:
        raise BenchError("the seeded database has no published articles")
    return {"SOAK_TOKEN": token, "SOAK_SLUGS": ",".join(slugs), "SOAK_PREFIXES": ",".join(prefixes)}


def soak(settings: Settings, processes: Processes, database_url: str, redis_url: str) -> Outcome:
    port = free_port()
    env = bench_env(database_url, redis_url, OUT / "stack", port)
    # Recycling would replace a leaking worker before its growth shows.
    env.update(
        GUNICORN_MAX_REQUESTS="0",
        # Celery's worker reads these itself and stops on 0 for "never": limits no soak reaches.
        CELERY_WORKER_MAX_TASKS_PER_CHILD="1000000000",
        CELERY_WORKER_MAX_MEMORY_PER_CHILD="100000000",
    )
    base = f"http://127.0.0.1:{port}"
    print(f"soak: starting the stack on {base}", flush=True)
    start_stack(processes, env, OUT / "stack", port)
    print(f"soak: seeding {settings.articles} articles", flush=True)
    manage(env, "seed_demo", "--articles", str(settings.articles), "--seed", "8")
    manage(env, "rebuild_autocomplete")
    wrk_env = prepare(env, base)

    print(f"soak: measuring the capacity of the mix ({settings.capacity_seconds} s)", flush=True)
    run_wrk(settings, base, 3, wrk_env, 0, 0)
    capacity = run_wrk(settings, base, settings.capacity_seconds, wrk_env, 0, 0)
    if capacity.errors:
        raise BenchError(f"{capacity.errors} errors while measuring capacity: see {OUT / 'stack' / 'log'}")
    target = capacity.rps * settings.load
    # Closed loop with a pause: each connection sends one request per (pause + latency).
    latency_ms = 1000 * settings.connections / capacity.rps
    delay_ms = max(1.0, 1000 * settings.connections / target - latency_ms)
    print(
        f"soak: capacity {capacity.rps:.0f} req/s; holding {target:.0f} req/s "
        f"({settings.load:.0%}) for {settings.warmup_seconds} s of warm-up and {settings.seconds} s",
        flush=True,
    )

    began = time.monotonic()
    pids_at_start = program_pids(env)

    def one_slice(seconds: int) -> Slice:
        nonlocal delay_ms
        item = run_wrk(settings, base, seconds, wrk_env, delay_ms, time.monotonic() - began)
        item.memory_mb = {
            program: sum(resident_kib(pid) for pid, _ in tree) / 1024
            for program, tree in program_pids(env).items()
        }
        # Steer the pause so the next slice lands on the target rate; halfway, as one slice's
        # latency on a shared machine is a noisy guide.
        if item.rps > 0:
            measured_latency = 1000 * settings.connections / item.rps - delay_ms
            wanted = max(1.0, 1000 * settings.connections / target - measured_latency)
            delay_ms = (delay_ms + wanted) / 2
        print(
            f"soak: t={item.started:4.0f} s  {item.rps:6.0f} req/s  p99 {item.p99_ms:6.1f} ms  "
            f"errors {item.errors}  " + "  ".join(f"{k} {v:.1f} MB" for k, v in item.memory_mb.items()),
            flush=True,
        )
        return item

    warmup_slices = max(1, settings.warmup_seconds // settings.interval)
    warmup = [one_slice(settings.interval) for _ in range(warmup_slices)]
    baseline = dict(warmup[-1].memory_mb)
    logs = OUT / "stack" / "log"
    offsets = {p: (logs / f"{p}.log").stat().st_size for p in PROGRAMS if (logs / f"{p}.log").exists()}
    slices = [one_slice(settings.interval) for _ in range(max(1, settings.seconds // settings.interval))]

    queue_left = _wait_for_queue(redis.Redis.from_url(f"{redis_url}/1"), "celery", at_most=0)
    tasks_run = tasks_succeeded(logs, offsets)

    context = render.build_context(env)
    worker_main = int(deploy_stack._supervisorctl(context, "pid", f"{context['SLUG']}:worker").stdout)
    print(
        f"soak: {settings.worker_tasks} no-op tasks through the worker, watching its main process", flush=True
    )
    task_run = run_ping_tasks(f"{redis_url}/1", worker_main, settings.worker_tasks)
    print(f"soak: {task_run.verdict()[1]}", flush=True)
    pids_at_end = program_pids(env)
    restarted = [
        f"{program}: {len(pids_at_start[program] - pids_at_end[program])} of {len(pids_at_start[program])}"
        for program in PROGRAMS
        if pids_at_start[program] - pids_at_end[program]
    ]
    processes.remember()
    return Outcome(
        capacity_rps=capacity.rps,
        target_rps=target,
        warmup=warmup,
        slices=slices,
        baseline_mb=baseline,
        log_errors=log_error_counts(logs, offsets),
        tasks_run=tasks_run,
        restarted=restarted,
        queue_left=queue_left,
        max_growth=settings.max_growth,
        task_run=task_run,
    )


def main() -> int:
    settings = from_env(Settings, "SOAK_")
    run = run_isolated("soak", OUT, lambda *services: soak(settings, *services))
    outcome = run.outcome
    if outcome is None:
        return 1
    passed, text = report(outcome)
    results: dict[str, Any] = {
        "settings": asdict(settings),
        "seconds": run.seconds,
        "outcome": asdict(outcome),
        "growth": growth(outcome),
        "checks": checks(outcome),
        "passed": passed,
    }
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(text)
    print(f"soak: {results['seconds']:.0f} s in all; results in {(OUT / 'results.json').relative_to(ROOT)}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
