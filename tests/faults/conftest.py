"""The fault suite's fixtures, and its report: what each fault test broke, what the user saw,
and what was lost, printed at the end of any run that ran a test marked `faults`."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

_statements: dict[str, str] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("faults") is not None and isinstance(item, pytest.Function):
            _statements[item.nodeid] = inspect.cleandoc(item.function.__doc__ or "")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    outcomes: dict[str, str] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            if nodeid in _statements and outcomes.get(nodeid) in (None, "passed"):
                outcomes[nodeid] = outcome.upper()
    if not outcomes:
        return
    terminalreporter.section("fault report")
    for nodeid, outcome in outcomes.items():
        terminalreporter.write_line(f"{outcome}  {nodeid}")
        statement = _statements[nodeid] or "(no statement: every fault test must say what it broke)"
        for line in statement.splitlines():
            terminalreporter.write_line(f"    {line}")


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults-logs")
