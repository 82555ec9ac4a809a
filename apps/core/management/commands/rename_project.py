"""`make rename NAME=<slug>`: give a fork its own name.

The name lives in as few places as possible: `PROJECT_SLUG` in the settings, from which the
cache and statsd prefixes, the API title, the supervisor group, the nginx upstream and the
Munin plugin names are derived, plus the few files that cannot read a setting (package
metadata, the lock file, example values, the README title). The lowercase name is replaced as
a word or a `<name>_` prefix in every tracked text file and file name; the capitalised "Keel" in
prose names the upstream template and stays.
"""

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

VALID_SLUG = re.compile(r"^[a-z][a-z0-9_-]{0,28}[a-z0-9]$")


def current_name(root: Path) -> str:
    return str(tomllib.loads((root / "pyproject.toml").read_text())["project"]["name"])


def tracked_text_files(root: Path) -> list[Path]:
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z"], cwd=root, check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise CommandError(
            f"rename needs a git checkout to know which files are the project's: {error}"
        ) from error
    return [root / name for name in listing.split("\0") if name]


def rename(root: Path, old: str, new: str) -> list[Path]:
    """Replace `old` with `new` as a word or a `<old>_` prefix, in contents and file names.

    The prefix form covers derived names (the `<old>_` Munin plugins, `<old>_task`); the files
    named after the project (the Munin plugin and its plugin-conf.d entry) are moved with git.
    Returns the files changed.
    """
    word = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(old)}(?![A-Za-z0-9])")
    title = re.compile(rf"^# {re.escape(old.capitalize())}\b", re.MULTILINE)
    changed = []
    for path in tracked_text_files(root):
        try:
            text = path.read_text()
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        renamed = word.sub(new, text)
        if path.name == "README.md" and path.parent == root:
            renamed = title.sub(f"# {new.replace('-', ' ').replace('_', ' ').title()}", renamed, count=1)
        if renamed != text:
            path.write_text(renamed)
            changed.append(path)
        if word.match(path.name):
            target = path.with_name(word.sub(new, path.name, count=1))
            subprocess.run(["git", "mv", str(path), str(target)], cwd=root, check=True)
            changed.append(target)
    return changed


class Command(BaseCommand):
    help = "Rename the project (package name, PROJECT_SLUG and everything derived from it)."

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
        old = current_name(root)
        if old == new:
            self.stdout.write(f"The project is already named {new!r}; nothing to do.")
            return
        changed = rename(root, old, new)
        for path in changed:
            self.stdout.write(f"  renamed in {path.relative_to(root)}")
        self.stdout.write(self.style.SUCCESS(f"Renamed {old!r} to {new!r} in {len(changed)} file(s)."))
        self.stdout.write("Review with `git diff`; a running stack needs `make render` and a restart.")
