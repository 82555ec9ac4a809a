"""Suite-wide fixtures. The suite needs its real database and Redis; it stops at once if they are down."""

import importlib.util
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

# The suite's shared support (ports, waiting, processes, servers, fixtures): tests/support/.
pytest_plugins = ["tests.support.fixtures", "tests.support.browser"]


def _unreachable(url: str, default_port: int) -> str | None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as error:
        return f"{parts.scheme}://{host}:{port} ({error})"
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    database = settings.DATABASES["default"]
    problems = []
    engine = database["ENGINE"].rsplit(".", 1)[-1]
    if engine == "sqlite3":
        folder = Path(database["TEST"].get("NAME") or database["NAME"]).parent
        if not os.access(folder, os.W_OK):
            problems.append(f"SQLite folder {folder} is not writable; set DATABASE_URL")
    else:
        default_port = {"postgresql": 5432, "mysql": 3306}[engine]
        host, port = database["HOST"] or "127.0.0.1", database["PORT"] or default_port
        problem = _unreachable(f"{engine}://{host}:{port}", default_port)
        if problem:
            problems.append(f"database unreachable at {problem}; set DATABASE_URL")
    if engine == "mysql" and importlib.util.find_spec("MySQLdb") is None:
        problems.append("the MariaDB driver (mysqlclient) is not installed; run: make test DB=mariadb")
    problem = _unreachable(settings.REDIS_URL, 6379)
    if problem:
        problems.append(f"Redis unreachable at {problem}; set REDIS_URL")
    if problems:
        pytest.exit("The test suite needs real services: " + "; ".join(problems), returncode=3)


def _runs_once_on_postgresql(item: pytest.Item) -> bool:
    """Fault tests, the production stack's tests and the browser's: their subject is not the suite's
    database (the stack always runs on PostgreSQL), so a run on SQLite or MariaDB would only repeat
    them slowly."""
    # tests/stack/, and the stack tests of any app (apps/<name>/tests/stack/).
    return item.get_closest_marker("faults") is not None or item.path.parent.name in ("stack", "browser")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        return
    once = [item for item in items if _runs_once_on_postgresql(item)]
    if once:
        config.hook.pytest_deselected(items=once)
        items[:] = [item for item in items if not _runs_once_on_postgresql(item)]
        config.stash[_deselected_once] = len(once)


_deselected_once = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    count = config.stash.get(_deselected_once, 0)
    if count:
        terminalreporter.write_line(
            f"{count} fault, stack and browser tests deselected: they run once, "
            "in the PostgreSQL run (make test)."
        )
