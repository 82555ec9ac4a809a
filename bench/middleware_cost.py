"""What each of the project's middleware costs a request, measured in-process; run with the stack's env.

    python -m bench.middleware_cost 2000

Serves bench/hello/ through Django's WSGI handler with the first 0, 1, 2, ... of MIDDLEWARE, in
interleaved rounds; a middleware's cost is the median time per request with it minus without it
(the list before it kept, as later middleware may need what earlier ones set). No server, no
network: the figures are Python's own, and they are small beside their noise on a busy machine.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.test import RequestFactory, override_settings  # noqa: E402

ROUNDS = 5


def handler_with(middleware: list[str]) -> WSGIHandler:
    with override_settings(MIDDLEWARE=middleware):
        return WSGIHandler()


def seconds_per_request(handler: WSGIHandler, environ: dict, requests: int) -> float:
    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if not status.startswith("200"):
            raise RuntimeError(f"bench/hello/ answered {status} in-process")
        return None

    started = time.perf_counter()
    for _ in range(requests):
        for _chunk in handler(dict(environ), start_response):
            pass
    return (time.perf_counter() - started) / requests


def main(requests: int) -> dict[str, object]:
    middleware = list(settings.MIDDLEWARE)
    environ = RequestFactory().get("/bench/hello/", HTTP_HOST="127.0.0.1", REMOTE_ADDR="127.0.0.1").environ
    handlers = [handler_with(middleware[:size]) for size in range(len(middleware) + 1)]
    timings: list[list[float]] = [[] for _ in handlers]
    for handler in handlers:  # warm up: imports, first-call caches
        seconds_per_request(handler, environ, 50)
    for _ in range(ROUNDS):
        for size, handler in enumerate(handlers):
            timings[size].append(seconds_per_request(handler, environ, requests))
    # The fastest round: the one the other processes on the machine disturbed least.
    medians = [min(times) * 1e6 for times in timings]
    costs = {name: round(medians[i + 1] - medians[i], 1) for i, name in enumerate(middleware)}
    return {"bare_us": round(medians[0], 1), "full_us": round(medians[-1], 1), "middleware_us": costs}


if __name__ == "__main__":
    print(f"BENCH_JSON {json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))}")
