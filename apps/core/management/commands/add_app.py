"""`make app NAME=<name>`: a new app in the house style, installed and routed with no hand edits."""

import keyword
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from config import project_apps

TEMPLATE_DIR = Path(settings.BASE_DIR) / "config" / "app_template"
VALID_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


def name_problem(name: str) -> str:
    """Why `name` cannot be a new app, or an empty string if it can."""
    if not VALID_NAME.match(name):
        return "use 2-40 lowercase letters, digits or underscores, starting with a letter (e.g. inventory)"
    if keyword.iskeyword(name) or name in {"test", "tests", "apps", "config"}:
        return "it is a reserved word"
    if (project_apps.APPS_DIR / name).exists():
        return f"apps/{name}/ already exists"
    if any(config.label == name for config in apps.get_app_configs()):
        return f"an installed app already has the label {name!r}"
    return ""


class Command(BaseCommand):
    help = "Create apps/<name>/ from the app template: model, admin, services, API, tasks, tests."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="The app's name: a plural noun, e.g. inventory or invoices.")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"]
        problem = name_problem(name)
        if problem:
            raise CommandError(f"Cannot create app {name!r}: {problem}. Nothing was changed.")
        target = project_apps.APPS_DIR / name
        target.mkdir()
        try:
            call_command(
                "startapp",
                name,
                str(target),
                template=str(TEMPLATE_DIR),
                verbosity=0,
            )
            self._render_extra_context(target, name)
            self._tidy(target)
            # A new process: this one's app registry was built before the app existed.
            subprocess.run(
                [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "makemigrations", name],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        self.stdout.write(self.style.SUCCESS(f"Created apps/{name}/."))
        self.stdout.write(
            "It is installed and its API is routed by convention (see config/project_apps.py).\n"
            f"Its first migration is made. Next: shape apps/{name}/models.py, "
            "then `make migrations` and `make test`."
        )

    def _tidy(self, target: Path) -> None:
        """Sort the imports for this app's name, as `make fmt` would (ruff is a dev tool: optional)."""
        ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
        if ruff is not None:
            subprocess.run([ruff, "check", "--quiet", "--fix", "--select", "I", str(target)], check=True)
            subprocess.run([ruff, "format", "--quiet", str(target)], check=True)

    def _render_extra_context(self, target: Path, name: str) -> None:
        """startapp fills app_name and camel_case_app_name; these are the template's own placeholders."""
        replacements = {
            "__verbose_name__": name.replace("_", " ").capitalize(),
            "__url_prefix__": name.replace("_", "-"),
        }
        for path in target.rglob("*.py"):
            text = path.read_text()
            for placeholder, value in replacements.items():
                text = text.replace(placeholder, value)
            path.write_text(text)
