"""Celery figures for `make bench`, printed as one JSON line; run with the stack's environment.

python -m bench.celery_probe roundtrip 300    # p50/p99 of queue -> run -> result, one at a time
python -m bench.celery_probe throughput 5000  # no-op tasks queued at once, until the last result
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import django

django.setup()

from celery.result import ResultSet  # noqa: E402

from config.celery import app  # noqa: E402

TASK = "core.ping"


def roundtrip(count: int) -> dict[str, float]:
    app.send_task(TASK).get(timeout=30)  # connections open before the clock starts
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        app.send_task(TASK).get(timeout=30)
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    return {
        "count": count,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def throughput(count: int) -> dict[str, float]:
    app.send_task(TASK).get(timeout=30)
    started = time.perf_counter()
    results = ResultSet([app.send_task(TASK) for _ in range(count)])
    queued = time.perf_counter() - started
    answers = results.join_native(timeout=600, propagate=True, interval=0.05)
    elapsed = time.perf_counter() - started
    if answers.count("pong") != count:
        raise SystemExit(f"expected {count} answers, got {answers.count('pong')}")
    return {"count": count, "seconds": elapsed, "queue_seconds": queued, "tasks_per_s": count / elapsed}


if __name__ == "__main__":
    kind, count = sys.argv[1], int(sys.argv[2])
    figures = {"roundtrip": roundtrip, "throughput": throughput}[kind](count)
    print("BENCH_JSON " + json.dumps(figures))
