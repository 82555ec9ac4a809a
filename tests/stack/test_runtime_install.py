"""A host's install: `make install-runtime` (no dev group) runs the whole production stack.

The virtualenv is built once per run under build/ by the make target itself. supervisord comes
from the test's own virtualenv here, standing in for the host's system package; every program it
starts (gunicorn, the Celery worker and beat, the local nginx wrapper) runs from the runtime one.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent.parent
RUNTIME_VENV = ROOT / "build" / "venv-runtime"
STRONG_SECRET = "x7Fq2LmN9pR4sT8vW1yZ3bC6dE0gH5jK-aQ_uV2wX4yZ6bD8fG1hJ3kL5mN7pQ9rS"
# What only the tests, lint and type checks use: none of it may be in a host's virtualenv.
DEV_ONLY = {
    "pytest",
    "factory-boy",
    "moto",
    "flask",
    "mypy",
    "ruff",
    "coverage",
    "import-linter",
}


def _runtime_modules() -> list[str]:
    """Every module of the site that a host runs: the settings, the apps (not their tests), deploy/."""
    modules = []
    for path in sorted([*ROOT.glob("config/**/*.py"), *ROOT.glob("apps/**/*.py"), *ROOT.glob("deploy/*.py")]):
        relative = path.relative_to(ROOT).with_suffix("")
        parts = relative.parts
        if "tests" in parts or "app_template" in parts or parts[-1] == "__init__" or "." in parts[-1]:
            continue
        if parts[:2] == ("config", "settings") and parts[-1] in {"development", "test", "local"}:
            continue
        modules.append(".".join(parts))
    return modules


@pytest.fixture(scope="session")
def runtime_python() -> Path:
    built = subprocess.run(
        ["make", "--no-print-directory", "install-runtime", f"RUNTIME_VENV={RUNTIME_VENV}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return RUNTIME_VENV / "bin" / "python"


def _production_env(**extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(ROOT)),
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": STRONG_SECRET,
        "ALLOWED_HOSTS": "example.com",
        **extra,
    }


def test_the_runtime_install_has_no_dev_only_package(runtime_python):
    listed = subprocess.run(
        [
            str(runtime_python),
            "-c",
            "import importlib.metadata as m; print(*(d.name for d in m.distributions()))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    installed = set(listed.replace("_", "-").split())
    assert "django" in installed
    assert "gunicorn" in installed
    assert not installed & DEV_ONLY


def test_no_runtime_module_imports_a_dev_only_package(runtime_python):
    code = (
        "import importlib, sys, django\n"
        "django.setup()\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as error:\n"
        "        failed.append(f'{name}: {error}')\n"
        "print(*failed, sep='\\n')\n"
        "sys.exit(1 if failed else 0)\n"
    )
    modules = _runtime_modules()
    assert "apps.articles.services" in modules
    assert "deploy.render" in modules
    result = subprocess.run(
        [str(runtime_python), "-c", code, *modules],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_pass_check_deploy_from_the_runtime_install(runtime_python):
    result = subprocess.run(
        [str(runtime_python), "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_the_renderer_validates_its_files_from_the_runtime_install(runtime_python, tmp_path):
    """The runbook renders with the host's virtualenv: nginx -t and supervisor's parser both run."""
    result = subprocess.run(
        [str(runtime_python), "-m", "deploy.render"],
        cwd=ROOT,
        env=_production_env(DEPLOY_BUILD_DIR=str(tmp_path / "deploy"), NGINX_TLS="off"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "supervisor: ok" in result.stdout


@pytest.fixture(scope="module")
def runtime_stack(
    runtime_python: Path, tmp_path_factory: pytest.TempPathFactory, stack_database: str, stack_redis: str
) -> Iterator[Stack]:
    with running_stack(
        tmp_path_factory.mktemp("runtime-stack"), stack_database, stack_redis, DEPLOY_VENV=str(RUNTIME_VENV)
    ) as running:
        yield running


def test_the_production_stack_serves_from_the_runtime_install(runtime_stack):
    # The Python programs supervisord started run from the runtime virtualenv (nginx execs itself).
    for program in ("web", "worker", "beat"):
        pid = runtime_stack.pid(program)
        assert pid, program
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2]
        assert command[0].startswith(str(RUNTIME_VENV).encode()), (program, command)
    assert runtime_stack.request("GET", "/healthz").status == 200
    ready = runtime_stack.request("GET", "/readyz")
    assert ready.status == 200, ready.body
    assert runtime_stack.request("GET", "/api/v1/articles/").status == 200
