"""The project's own apps, found by convention so that adding or dropping one edits no shared file.

An app is a package `apps/<name>/` with an `apps.py`. It is installed by existing; its pages
(`apps/<name>/urls.py`) are mounted at `/<name>/`, its API (`apps/<name>/api/urls.py`) under
`/api/v1/`, its periodic tasks (`apps/<name>/schedule.py`) join the beat schedule, its settings
(`apps/<name>/conf.py`) join the settings and the settings reference. Deleting the
folder removes it. This keeps a fork's work out of the files that the
upstream template changes, so pulling its improvements merges cleanly.
"""

from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from typing import Any

APPS_DIR = Path(__file__).resolve().parent.parent / "apps"
# The user model must be installed before anything that points at it.
FOUNDATION_APPS = ["apps.core", "apps.users"]


def discover() -> list[str]:
    found = sorted(f"apps.{apps_py.parent.name}" for apps_py in APPS_DIR.glob("*/apps.py"))
    return FOUNDATION_APPS + [name for name in found if name not in FOUNDATION_APPS]


def has_module(dotted: str) -> bool:
    try:
        return find_spec(dotted) is not None
    except ModuleNotFoundError:
        return False


def page_url_modules() -> list[tuple[str, str]]:
    """(url prefix, URLconf module) for every project app that has pages."""
    with_pages = [name for name in discover() if has_module(f"{name}.urls")]
    return [(f"{name.removeprefix('apps.')}/", f"{name}.urls") for name in with_pages]


def beat_schedules() -> dict[str, dict[str, Any]]:
    """Every project app's `schedule.beat_schedule()`, so an app's periodic tasks leave with it."""
    schedules: dict[str, dict[str, Any]] = {}
    for name in discover():
        if has_module(f"{name}.schedule"):
            schedules.update(import_module(f"{name}.schedule").beat_schedule())
    return schedules


def api_url_modules() -> list[str]:
    return [f"{name}.api.urls" for name in discover() if has_module(f"{name}.api.urls")]


def app_variables() -> list[Any]:
    """Every project app's environment variables, declared in `apps/<name>/conf.py` (VARIABLES)."""
    return [
        var
        for name in discover()
        if has_module(f"{name}.conf")
        for var in import_module(f"{name}.conf").VARIABLES
    ]


def app_settings(profile: str | None = None) -> dict[str, Any]:
    """Every project app's settings, from `apps/<name>/conf.py`'s `settings(profile)`."""
    merged: dict[str, Any] = {}
    for name in discover():
        if has_module(f"{name}.conf"):
            merged.update(import_module(f"{name}.conf").settings(profile))
    return merged
