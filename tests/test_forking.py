"""Forking Keel: a new app, a rename, and dropping the reference app, each in a copy of the repository."""

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.integration


def fork_database_name(copy: Path) -> str:
    return f"fork_{os.getpid()}_{copy.name}"


def run(cwd: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        # The copy's own test database, so it never meets this run's.
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{fork_database_name(cwd)}",
        # The test profile throughout: the copies run their own tests against the real services.
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
    }
    env.pop("PYTEST_ADDOPTS", None)
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The tracked files of this checkout, committed in a fresh repository, sharing our virtualenv."""
    copy = tmp_path / "fork"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in filter(None, files.stdout.split("\0")):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    for shared in (".venv", ".uv"):
        if (ROOT / shared).exists():
            (copy / shared).symlink_to(ROOT / shared)
    run(copy, "git", "init", "-q")
    run(copy, "git", "add", "-A")
    run(copy, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "fork")
    return copy


@contextmanager
def fork_database(copy: Path) -> Iterator[None]:
    """The copy's own database (the one `run` names), created empty and dropped afterwards."""
    name = fork_database_name(copy)
    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield
    finally:
        with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def git_status(copy: Path) -> str:
    return run(copy, "git", "status", "--porcelain").stdout


def test_make_app_creates_an_installed_routed_app_whose_tests_pass(repo_copy):
    run(repo_copy, "make", "app", "NAME=inventory")
    app = repo_copy / "apps" / "inventory"
    for part in (
        "apps.py",
        "models.py",
        "admin.py",
        "services.py",
        "selectors.py",
        "tasks.py",
        "api/serializers.py",
        "api/views.py",
        "api/urls.py",
        "tests/factories.py",
        "migrations/0001_initial.py",
    ):
        assert (app / part).is_file(), part
    assert 'name = "apps.inventory"' in (app / "apps.py").read_text()
    # The house task decorator (retries, dead letters, delivery bound), as the README teaches.
    tasks = (app / "tasks.py").read_text()
    assert "@house_task" in tasks
    assert "shared_task" not in tasks
    generated = run(repo_copy, ".venv/bin/pytest", "-q", "-p", "no:cacheprovider", "apps/inventory").stdout
    assert "6 passed" in generated, generated
    schema = run(
        repo_copy,
        ".venv/bin/python",
        "manage.py",
        "spectacular",
        "--format",
        "openapi-json",
        "--fail-on-warn",
    ).stdout
    assert '"/api/v1/inventory/"' in schema
    run(repo_copy, ".venv/bin/ruff", "check", "apps/inventory")
    run(repo_copy, ".venv/bin/python", "manage.py", "makemigrations", "--check", "--dry-run")


def test_make_app_refuses_bad_or_clashing_names_and_changes_nothing(repo_copy):
    refusals = {"Bad-Name": "lowercase", "users": "already exists", "auth": "label", "class": "reserved"}
    for name, reason in refusals.items():
        result = run(repo_copy, ".venv/bin/python", "manage.py", "add_app", name, check=False)
        assert result.returncode != 0, name
        assert reason in result.stderr, result.stderr
    assert run(repo_copy, "make", "app", check=False).returncode == 2  # no NAME: usage
    assert git_status(repo_copy) == ""


def test_make_rename_renames_the_project_everywhere_and_only_once(repo_copy):
    old = run(
        repo_copy,
        ".venv/bin/python",
        "-c",
        "import tomllib; print(tomllib.load(open('pyproject.toml', 'rb'))['project']['name'])",
    ).stdout.strip()
    assert run(repo_copy, "make", "rename", "NAME=Not A Slug", check=False).returncode != 0
    assert git_status(repo_copy) == ""

    run(repo_copy, "make", "rename", "NAME=acme")
    leftovers = run(
        repo_copy, "git", "grep", "-n", "-E", rf"(^|[^A-Za-z0-9_]){old}([^A-Za-z0-9]|$)", check=False
    )
    assert leftovers.stdout == ""
    assert [name for name in run(repo_copy, "git", "ls-files").stdout.split() if old in name] == []
    assert (repo_copy / "monitoring" / "munin" / "plugins" / "acme_").is_file()
    assert 'name = "acme"' in (repo_copy / "pyproject.toml").read_text()
    assert (repo_copy / "README.md").read_text().startswith("# Acme\n")
    slug = run(
        repo_copy,
        ".venv/bin/python",
        "manage.py",
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.PROJECT_SLUG)",
    ).stdout.strip()
    assert slug == "acme"

    first_diff = run(repo_copy, "git", "diff").stdout
    again = run(repo_copy, ".venv/bin/python", "manage.py", "rename_project", "acme")
    assert "already named" in again.stdout
    assert run(repo_copy, "git", "diff").stdout == first_diff
    run(repo_copy, ".venv/bin/python", "manage.py", "check")
    run(repo_copy, ".venv/bin/pytest", "-q", "-p", "no:cacheprovider", "apps/users", "tests/test_urls.py")


def test_make_remove_example_leaves_a_clone_that_checks_migrates_and_passes_its_fast_suite(repo_copy):
    """What it runs in the clone: check, migrate on an empty database, makemigrations --check, the
    fast suite (apps and tests, not integration) and the collection of the whole suite; the
    integration tests are collected (none imports the example app) but not run."""
    removed = run(repo_copy, "make", "remove-example").stdout
    assert "removed apps/articles/" in removed
    assert not (repo_copy / "apps" / "articles").exists()
    # Nothing left that names the app or its settings, in code, settings or the documented env.
    leftovers = run(
        repo_copy, "git", "grep", "-n", "-E", r"apps[./]articles|ARTICLES_", "--",
        "apps", "config", "conftest.py", ".env.example", "pyproject.toml",
        check=False,
    )  # fmt: skip
    assert leftovers.stdout == ""
    assert "already removed" in run(repo_copy, "make", "remove-example").stdout

    run(repo_copy, ".venv/bin/ruff", "check", "--no-cache", ".")
    run(repo_copy, ".venv/bin/ruff", "format", "--no-cache", "--check", ".")
    manage = (".venv/bin/python", "manage.py")
    run(repo_copy, *manage, "check")
    run(repo_copy, *manage, "makemigrations", "--check", "--dry-run")
    with fork_database(repo_copy):
        run(repo_copy, *manage, "migrate", "--no-input")
    pytest_args = (".venv/bin/pytest", "-q", "-p", "no:cacheprovider")
    collected = run(repo_copy, *pytest_args, "--collect-only").stdout
    assert " collected" in collected or "tests collected" in collected, collected[-500:]
    run(repo_copy, *pytest_args, "-m", "not integration")
