"""The stack's live status, for the home page a developer keeps open while starting it.

Read once per request from the readiness checks (apps.core.http.health) and the monitoring
snapshot (apps.core.tasks.monitoring): nothing polls in the background.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from django.http import HttpRequest

from apps.core.data.cache import raw_client
from apps.core.http.health import CheckResult, run_checks, tasks_run_eagerly
from apps.core.tasks.monitoring import queue_depths

# A worker that does not answer a ping within this long is reported as not answering.
WORKER_PING_TIMEOUT = 1.0
PACKAGES = ("django", "djangorestframework", "celery", "kombu", "psycopg", "redis", "gunicorn")


@dataclass
class Battery:
    name: str
    # "ok"; "down"; "warn" (an advisory check failed: the site still serves); "off" (not used
    # here, tasks run eagerly); "info" (nothing to check)
    state: str
    summary: str
    seconds: float | None = None
    facts: list[tuple[str, str]] = field(default_factory=list)

    @property
    def milliseconds(self) -> str:
        return "" if self.seconds is None else f"{self.seconds * 1000:.0f} ms"


def _state(result: CheckResult | None) -> str:
    if result is None:
        return "off"
    if result.ok:
        return "off" if result.name in {"broker", "beat"} and tasks_run_eagerly() else "ok"
    return "down" if result.required else "warn"


def _checked(name: str, result: CheckResult | None, facts: list[tuple[str, str]]) -> Battery:
    summary = "no check" if result is None else result.detail
    return Battery(name, _state(result), summary, result.seconds if result else None, facts)


def _database_facts() -> list[tuple[str, str]]:
    facts = [("engine", connection.display_name), ("name", str(connection.settings_dict["NAME"]))]
    try:
        server = ".".join(str(part) for part in connection.get_database_version())
    except Exception as error:
        server = f"unknown ({type(error).__name__})"
    return [*facts, ("server version", server)]


def _redis_facts() -> list[tuple[str, str]]:
    client = raw_client()
    if client is None:
        return [("backend", settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1])]
    try:
        info = client.info("server")
    except Exception as error:
        return [("backend", "Redis"), ("server version", f"unknown ({type(error).__name__})")]
    return [("backend", "Redis"), ("server version", str(info.get("redis_version", "?")))]


def _broker_facts() -> list[tuple[str, str]]:
    if tasks_run_eagerly():
        return [("transport", "none: tasks run eagerly inside the web process")]
    facts = [("transport", urlsplit(settings.CELERY_BROKER_URL).scheme)]
    depths = queue_depths()
    if depths is None:
        facts.append(("queues", "unknown (the broker did not answer)"))
    else:
        facts.extend((f"queue {name}", f"{depth} waiting") for name, depth in depths.items())
    return facts


def _workers() -> Battery:
    if tasks_run_eagerly():
        return Battery("workers", "off", "none: tasks run eagerly inside the web process")
    from config.celery import app

    # A broadcast ping waits its whole timeout for replies, so it has no timing worth showing.
    try:
        replies = app.control.ping(timeout=WORKER_PING_TIMEOUT)
    except Exception as error:
        return Battery("workers", "down", f"ping failed: {type(error).__name__}")
    names = sorted(name for reply in replies or [] for name in reply)
    if not names:
        return Battery("workers", "down", f"no worker answered a ping within {WORKER_PING_TIMEOUT:g}s")
    return Battery(
        "workers",
        "ok",
        f"{len(names)} answered a ping within {WORKER_PING_TIMEOUT:g}s",
        facts=[("worker", name) for name in names],
    )


def _durability(result: CheckResult | None) -> Battery:
    if tasks_run_eagerly():
        return Battery("broker durability", "off", "no broker: nothing queued to lose")
    return _checked("broker durability", result, [])


def _front(request: HttpRequest) -> Battery:
    software = request.META.get("SERVER_SOFTWARE", "unknown")
    if "HTTP_X_FORWARDED_FOR" not in request.META:
        return Battery("front", "info", "this request reached Django directly", facts=[("server", software)])
    return Battery("front", "info", "this request came through a proxy (nginx)", facts=[("server", software)])


def _versions() -> list[tuple[str, str]]:
    found = [("python", platform.python_version())]
    for package in PACKAGES:
        try:
            found.append((package, version(package)))
        except PackageNotFoundError:
            continue
    return found


def stack_status(request: HttpRequest) -> dict[str, object]:
    results = {result.name: result for result in run_checks()}
    batteries = [
        _checked("database", results.get("database"), _database_facts()),
        _checked("cache", results.get("cache"), _redis_facts()),
        _checked("broker", results.get("broker"), _broker_facts()),
        _workers(),
        _checked("beat", results.get("beat"), []),
        _durability(results.get("broker_durability")),
        _front(request),
    ]
    return {
        "batteries": batteries,
        "ready": all(result.ok for result in results.values() if result.required),
        # What makes /readyz say "degraded" while it still answers 200.
        "warnings": [
            name.replace("_", " ")
            for name, result in results.items()
            if not result.required and not result.ok
        ],
        "versions": _versions(),
        "settings_module": os.environ.get("DJANGO_SETTINGS_MODULE", ""),
        "debug": settings.DEBUG,
    }
