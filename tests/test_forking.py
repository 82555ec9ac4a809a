"""Forking: a new app, a rename, an upstream merge and dropping the reference app, each in a copy."""

import os
import re
import shutil
import subprocess
import tomllib
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


# The files that hold the project's name: everything else derives it from PROJECT_SLUG or is neutral.
NAMED_FILES = {"pyproject.toml", "uv.lock", "config/env.py", "docs/settings.md", "README.md"}


def project_name(copy: Path) -> str:
    return tomllib.loads((copy / "pyproject.toml").read_text())["project"]["name"]


def test_make_rename_sets_the_name_in_a_few_files_only_and_a_second_run_changes_nothing(repo_copy):
    old = project_name(repo_copy)
    assert run(repo_copy, "make", "rename", "NAME=Not A Slug", check=False).returncode != 0
    assert git_status(repo_copy) == ""

    renamed = run(repo_copy, "make", "rename", "NAME=acme").stdout
    changed = {line[3:] for line in git_status(repo_copy).splitlines()}
    assert changed == NAMED_FILES, renamed
    assert f"in {len(NAMED_FILES)} file(s)" in renamed
    for name in NAMED_FILES:
        assert f"set the name in {name}" in renamed
    assert 'name = "acme"' in (repo_copy / "pyproject.toml").read_text()
    assert (repo_copy / "README.md").read_text().startswith("# Acme\n")
    # Only the docs, which credit the template, still name it; no code, config or test does.
    still_named = set(run(repo_copy, "git", "grep", "-il", old, check=False).stdout.split())
    assert {name for name in still_named if not name.startswith("docs/") and name != "README.md"} == set()
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
    # The settings reference is still what config/env.py generates (make lint checks it).
    reference = run(repo_copy, ".venv/bin/python", "-m", "config.env", "--reference").stdout
    assert reference == (repo_copy / "docs" / "settings.md").read_text()

    first_diff = run(repo_copy, "git", "diff").stdout
    again = run(repo_copy, "make", "rename", "NAME=acme")
    assert "Nothing changed" in again.stdout
    assert run(repo_copy, "git", "diff").stdout == first_diff
    run(repo_copy, ".venv/bin/python", "manage.py", "check")
    run(
        repo_copy, ".venv/bin/pytest", "-q", "-p", "no:cacheprovider",
        "apps/users", "tests/test_urls.py", "tests/stack/test_render.py", "apps/core/tests/test_home_page.py",
    )  # fmt: skip


def edit(path: Path, pattern: str, replacement: str) -> None:
    """One substitution a developer would make by hand; fails if the place has moved."""
    text = path.read_text()
    updated, count = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE)
    assert count == 1, f"{pattern!r} not found in {path}"
    path.write_text(updated)


def insert_midway(path: Path, line: str) -> None:
    """An upstream change in the middle of a file: a line inserted before its middle blank line."""
    lines = path.read_text().splitlines(keepends=True)
    middle = len(lines) // 2
    blank = next(index for index in range(middle, len(lines)) if not lines[index].strip())
    lines.insert(blank, line + "\n")
    path.write_text("".join(lines))


def commit(repo: Path, message: str) -> None:
    run(repo, "git", "add", "-A")
    run(repo, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", message)


def test_a_renamed_fork_with_its_own_app_merges_upstreams_core_deploy_and_settings_changes_cleanly(tmp_path):
    """The upstream path a team follows (docs/forking.md), from this repository's committed HEAD."""
    upstream, fork = tmp_path / "upstream", tmp_path / "fork"
    run(tmp_path, "git", "clone", "-q", str(ROOT), str(upstream))
    branch = run(upstream, "git", "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
    run(tmp_path, "git", "clone", "-q", "-o", "upstream", str(upstream), str(fork))
    (fork / ".venv").symlink_to(ROOT / ".venv")
    python = (".venv/bin/python",)

    # The fork: its name, its own app, a setting default of its own; committed.
    run(fork, *python, "manage.py", "rename_project", "acme")
    run(fork, *python, "manage.py", "add_app", "inventory")
    edit(fork / "config" / "env.py", r'(Var\("API_PAGE_SIZE", "int", )\d+', r"\g<1>50")
    (fork / "docs" / "settings.md").write_text(run(fork, *python, "-m", "config.env", "--reference").stdout)
    commit(fork, "acme: renamed, inventory app, 50 items a page")
    fork_changed = set(run(fork, "git", "diff", "--name-only", "HEAD~1").stdout.split())

    # Upstream, later: a fix across core, deploy and settings, with its settings reference.
    insert_midway(
        upstream / "apps" / "core" / "http" / "middleware.py", "# Upstream: a fix in the middleware."
    )
    insert_midway(upstream / "deploy" / "nginx" / "site.conf.j2", "# Upstream: a fix in the site.")
    insert_midway(
        upstream / "config" / "settings" / "security.py", "# Upstream: a fix in the security settings."
    )
    edit(upstream / "config" / "env.py", r'(Var\("BACKUP_KEEP", "int", )\d+', r"\g<1>14")
    reference = run(
        upstream, str(ROOT / ".venv" / "bin" / "python"), "-m", "config.env", "--reference"
    ).stdout
    (upstream / "docs" / "settings.md").write_text(reference)
    commit(upstream, "Upstream: middleware, site, security settings; two weeks of backups")
    upstream_changed = set(run(upstream, "git", "diff", "--name-only", "HEAD~1").stdout.split())
    assert upstream_changed & fork_changed == {"config/env.py", "docs/settings.md"}

    run(fork, "git", "fetch", "-q", "upstream")
    merge = run(fork, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "merge", "--no-edit",
                f"upstream/{branch}", check=False)  # fmt: skip
    conflicts = run(fork, "git", "diff", "--name-only", "--diff-filter=U").stdout.split()
    assert conflicts == [], merge.stdout
    assert merge.returncode == 0, merge.stdout + merge.stderr

    # Both sides' work is in the result, and the result is consistent.
    assert "# Upstream: a fix in the middleware." in (fork / "apps/core/http/middleware.py").read_text()
    assert "# Upstream: a fix in the site." in (fork / "deploy/nginx/site.conf.j2").read_text()
    env_py = (fork / "config" / "env.py").read_text()
    assert 'Var("BACKUP_KEEP", "int", 14' in env_py
    assert 'Var("API_PAGE_SIZE", "int", 50' in env_py
    assert project_name(fork) == "acme"
    assert (fork / "apps" / "inventory" / "apps.py").is_file()
    reference = run(fork, *python, "-m", "config.env", "--reference").stdout
    assert reference == (fork / "docs" / "settings.md").read_text()
    run(fork, *python, "manage.py", "check")
    run(fork, *python, "manage.py", "makemigrations", "--check", "--dry-run")


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
        "apps", "config", "conftest.py", ".env.example", "pyproject.toml", "docs/settings.md",
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
