"""The first hour on a fresh clone: what a new user runs first answers without surprises."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

ROOT = Path(__file__).resolve().parent.parent

# The development profile on its embedded defaults: no server named, whatever this run exports.
FIRST_RUN_ENV = {
    **{key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG")},
    "DJANGO_SETTINGS_MODULE": "config.settings.development",
    "REDIS_URL": "",
    "CELERY_BROKER_URL": "",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**FIRST_RUN_ENV, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db
def test_head_on_the_home_page_answers_200(client):
    assert client.head(reverse("home")).status_code == 200


@pytest.mark.django_db
def test_pages_and_the_admin_link_an_icon_that_is_served(client):
    assert finders.find("core/favicon.svg")
    for url in (reverse("home"), reverse("admin:login")):
        assert 'rel="icon" href="/static/core/favicon.svg"' in client.get(url).content.decode(), url


def test_the_schema_opened_in_a_browser_is_json_the_browser_shows(client):
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    response = client.get(reverse("api-schema"), HTTP_ACCEPT=browser)
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["openapi"].startswith("3.")
    # YAML for those who ask for it.
    assert client.get(reverse("api-schema") + "?format=yaml")["Content-Type"].startswith(
        "application/vnd.oai.openapi"
    )
    asked = client.get(reverse("api-schema"), HTTP_ACCEPT="application/yaml")
    assert asked["Content-Type"].startswith("application/yaml")


def test_migrate_on_a_database_that_does_not_exist_says_how_to_create_it_in_one_line():
    result = manage("migrate", DATABASE_URL="postgres://postgres@127.0.0.1:5432/app_first_hour_missing")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "createdb -h 127.0.0.1 -p 5432 -U postgres app_first_hour_missing" in result.stderr


def test_site_url_follows_the_port_unless_set():
    def site_url(**env: str) -> str:
        result = manage(
            "shell", "--no-imports", "-c", "from django.conf import settings; print(settings.SITE_URL)", **env
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert site_url(PORT="8765") == "http://127.0.0.1:8765"
    assert site_url(PORT="8765", SITE_URL="https://example.com") == "https://example.com"


def test_eager_tasks_run_without_a_broker_and_without_kombus_no_hostname_warning():
    result = manage(
        "shell",
        "--no-imports",
        "-c",
        "from apps.core.tasks.queueing import beat_heartbeat, enqueue; enqueue(beat_heartbeat)",
    )
    assert result.returncode == 0, result.stderr
    assert "Task apps.core.tasks.beat_heartbeat" in result.stderr
    assert "succeeded" in result.stderr
    assert "No hostname" not in result.stderr + result.stdout


def make(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), *args],
        cwd=cwd,
        env={**FIRST_RUN_ENV, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_make_run_serves_on_the_port_from_env_file_unless_the_environment_names_one(tmp_path):
    # A directory of its own for the .env, with what `make -n run` looks at from this checkout.
    for name in ("pyproject.toml", "uv.lock", ".venv"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / ".env").write_text("DEBUG=true\nexport PORT=8765\n")
    dry_run = make(tmp_path, "-n", "run").stdout
    assert "runserver 127.0.0.1:8765" in dry_run
    assert "PORT=8765" in dry_run  # so SITE_URL follows it
    assert "runserver 127.0.0.1:9001" in make(tmp_path, "-n", "run", PORT="9001").stdout
    (tmp_path / ".env").unlink()
    assert "runserver 127.0.0.1:8000" in make(tmp_path, "-n", "run").stdout


@pytest.mark.integration
def test_make_superuser_without_a_terminal_names_the_variables_or_creates_the_user(tmp_path):
    database = tmp_path / "first.sqlite3"
    env = {"DATABASE_URL": f"sqlite:///{database}"}
    refused = make(ROOT, "superuser", **env)
    assert refused.returncode != 0
    assert "DJANGO_SUPERUSER_EMAIL" in refused.stderr
    assert "DJANGO_SUPERUSER_PASSWORD" in refused.stderr

    created = make(
        ROOT,
        "superuser",
        DJANGO_SUPERUSER_EMAIL="admin@example.com",
        DJANGO_SUPERUSER_PASSWORD="a long first-hour password",
        **env,
    )
    assert created.returncode == 0, created.stderr
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT email, is_superuser FROM users_user").fetchall()
    assert rows == [("admin@example.com", 1)]

    again = make(
        ROOT,
        "superuser",
        DJANGO_SUPERUSER_EMAIL="admin@example.com",
        DJANGO_SUPERUSER_PASSWORD="a long first-hour password",
        **env,
    )
    assert again.returncode != 0  # the email is taken: an error, not a silent skip
