"""monitoring/statsd/catalogue.csv names every metric the code sends, and nothing it does not.

The stack test checks the names actually received; this one reads the code, so a metric on a
path no test exercises is caught too.
"""

import csv
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "monitoring" / "statsd" / "catalogue.csv"
TYPES = {"incr": "counter", "timing": "timer", "gauge": "gauge"}
# metrics.incr("name") or metrics.timing(f"name.{part}"): the method and the name's literal.
CALL = re.compile(r"metrics\.(incr|timing|gauge)\(\s*(f?)\"([^\"]+)\"")
ANY_CALL = re.compile(r"metrics\.(?:incr|timing|gauge)\(")


def _catalogue() -> list[dict[str, str]]:
    with CATALOGUE.open() as catalogue:
        return list(csv.DictReader(catalogue))


def _sources() -> list[Path]:
    return [
        path
        for folder in ("apps", "config")
        for path in (ROOT / folder).rglob("*.py")
        if "tests" not in path.parts and "migrations" not in path.parts
    ]


def _code_metrics() -> list[tuple[str, str, str]]:
    """(method, name template, file) of every metric call in the application code."""
    found = []
    for path in _sources():
        for method, _, name in CALL.findall(path.read_text()):
            found.append((method, name, str(path.relative_to(ROOT))))
    return found


def _template(name: str) -> re.Pattern[str]:
    """A code name like f"celery.task.{_name(task)}.{outcome}" as a pattern over catalogue names."""
    parts = re.split(r"\{[^}]*\}", name)
    return re.compile("[A-Za-z0-9_{}-]+".join(re.escape(part) for part in parts))


def test_every_metric_call_names_its_metric_with_a_string_literal():
    for path in _sources():
        text = path.read_text()
        assert len(ANY_CALL.findall(text)) == len(CALL.findall(text)), (
            f"{path}: a metric name is not a literal"
        )


def test_every_metric_the_code_sends_is_catalogued_with_its_type():
    entries = [entry for entry in _catalogue() if entry["source"] == "app"]
    for method, name, path in _code_metrics():
        matches = [entry for entry in entries if _template(name).fullmatch(entry["name"])]
        assert matches, f"{path}: {name} is not in {CATALOGUE.name}"
        assert {entry["type"] for entry in matches} == {TYPES[method]}, (
            f"{name} is catalogued with another type"
        )


def test_every_app_metric_in_the_catalogue_is_sent_somewhere_in_the_code():
    templates = [_template(name) for _, name, _ in _code_metrics()]
    stale = [
        entry["name"]
        for entry in _catalogue()
        if entry["source"] == "app" and not any(template.fullmatch(entry["name"]) for template in templates)
    ]
    assert stale == []


def test_every_catalogue_entry_has_a_known_type_source_and_a_meaning():
    for entry in _catalogue():
        assert entry["type"] in {"counter", "timer", "gauge"}, entry
        assert entry["source"] in {"app", "gunicorn"}, entry
        assert len(entry["meaning"]) > 10, entry
