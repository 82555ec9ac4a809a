"""`make rename NAME=<slug>`: give a fork its own name, in the few places that hold it.

Everything that carries the name at run time derives it from `PROJECT_SLUG` (cache and statsd
prefixes, the API title, the site's name on its pages, the supervisor group, the nginx files,
gunicorn's process name and socket); the code shared with the upstream template uses neutral
names. So the rename writes only the places that cannot read a setting:

- `pyproject.toml`: the package name;
- `uv.lock`: the project's own entry (the name as uv normalises it);
- `config/env.py`: the `PROJECT_SLUG` default;
- `docs/settings.md`: that default in the settings reference (generated from config/env.py);
- `README.md`: the title.

Each place is set to the new name rather than searched for the old one, so a second run, or a
run after a partial edit, changes nothing that is already right. No other file changes, so the
fork's later merges of the template's improvements meet the rename in these files alone.
"""

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

VALID_SLUG = re.compile(r"^[a-z][a-z0-9_-]{0,28}[a-z0-9]$")


def title(slug: str) -> str:
    """The name people read: `acme-shop` is "Acme Shop" (as the pages show it)."""
    return slug.replace("-", " ").replace("_", " ").title()


def normalized(name: str) -> str:
    """A package name as uv writes it in the lock file (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _setter(pattern: str, value: Callable[[str], str], flags: int = 0) -> Callable[[str, str], str]:
    """Set the one value `pattern` finds (its `value` group) to `value(new)`; fail if it is missing."""
    compiled = re.compile(pattern, flags)

    def apply(text: str, new: str) -> str:
        match = compiled.search(text)
        if match is None:
            raise CommandError(f"the name's place was not found (pattern {pattern!r}); nothing was changed.")
        start, end = match.span("value")
        return text[:start] + value(new) + text[end:]

    return apply


# Every place that holds the name, and how to set it.
PLACES: dict[str, Callable[[str, str], str]] = {
    "pyproject.toml": _setter(r'^\[project\]\nname = "(?P<value>[^"]*)"', str, re.MULTILINE),
    "uv.lock": _setter(
        r'^\[\[package\]\]\nname = "(?P<value>[^"]*)"\nversion = "[^"]*"\n'
        r'source = \{ (virtual|editable) = "\." \}',
        normalized,
        re.MULTILINE,
    ),
    "config/env.py": _setter(r'"PROJECT_SLUG",\n\s+"str",\n\s+"(?P<value>[^"]*)"', str),
    "docs/settings.md": _setter(r"^\| `PROJECT_SLUG` \| str \| `(?P<value>[^`]*)`", str, re.MULTILINE),
    "README.md": _setter(r"\A# (?P<value>.*)$", title, re.MULTILINE),
}


def rename(root: Path, new: str) -> list[str]:
    """Set the name in every place; returns the files whose text changed.

    Every file is read and checked before any is written, so a file that lost its place leaves
    the project as it was.
    """
    renamed = {}
    for name, place in PLACES.items():
        path = root / name
        if not path.is_file():
            raise CommandError(f"{name} is missing: rename runs in the project's root. Nothing was changed.")
        text = path.read_text()
        try:
            updated = place(text, new)
        except CommandError as error:
            raise CommandError(f"{name}: {error}") from None
        if updated != text:
            renamed[name] = updated
    for name, text in renamed.items():
        (root / name).write_text(text)
    return list(renamed)


class Command(BaseCommand):
    help = "Rename the project: its package name, the PROJECT_SLUG default and the README title."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="The new slug: lowercase letters, digits, - or _ (e.g. acme).")

    def handle(self, *args: Any, **options: Any) -> None:
        new = options["name"]
        if not VALID_SLUG.match(new):
            raise CommandError(
                f"{new!r} is not a valid project slug: use 2-30 lowercase letters, digits, '-' or '_', "
                "starting with a letter and ending with a letter or digit. Nothing was changed."
            )
        root = Path(settings.BASE_DIR)
        changed = rename(root, new)
        if not changed:
            self.stdout.write(f"Nothing changed: the project is already named {new!r}.")
            return
        for name in changed:
            self.stdout.write(f"  set the name in {name}")
        self.stdout.write(self.style.SUCCESS(f"Renamed the project to {new!r} in {len(changed)} file(s)."))
        self.stdout.write("Review with `git diff`; a running stack needs `make render` and a restart.")
