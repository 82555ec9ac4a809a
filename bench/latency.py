"""Each case's time for one request, in-process: the scale bench's judge of flatness.

    python -m bench.latency 40 < cases.json      # run with the stack's env and bench.settings

Reads [{"name", "path", "headers"}] on stdin; serves each path `requests` times in a row through
Django's test client (the project's whole middleware, production settings, the real database and Redis;
no server, no network, no queue of other requests) and prints each one's p50 and p90 in ms. wrk's
figures at 32 connections are mostly the time spent queued behind other requests, which a busy
machine moves more than the table's size does; one request at a time measures what the size
changes: the queries. "{n}" in a path becomes a counter, so every request misses the view cache.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import django

django.setup()

from django.test import Client  # noqa: E402

WARMUP = 3


def measure(path: str, headers: dict[str, str], requests: int) -> dict[str, float]:
    client = Client(HTTP_HOST="127.0.0.1", REMOTE_ADDR="127.0.0.1")
    times = []
    for number in range(-WARMUP, requests):
        started = time.perf_counter()
        response = client.get(path.replace("{n}", f"latency{number}{time.monotonic_ns()}"), headers=headers)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code} in-process")
        if number >= 0:
            times.append(elapsed * 1000)
    return {"p50_ms": statistics.median(times), "p90_ms": statistics.quantiles(times, n=10)[-1]}


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    cases = json.load(sys.stdin)
    results = {case["name"]: measure(case["path"], case["headers"], count) for case in cases}
    print(f"BENCH_JSON {json.dumps(results)}")
