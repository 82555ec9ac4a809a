"""The settings profiles, exercised as an operator would: in fresh processes with a given environment."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STRONG_SECRET = "x7Fq2LmN9pR4sT8vW1yZ3bC6dE0gH5jK-aQ_uV2wX4yZ6bD8fG1hJ3kL5mN7pQ9rS"


def manage(*args: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    # Start from a bare environment so the developer's own variables and .env do not leak in.
    base = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(ROOT)),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": STRONG_SECRET,
    "ALLOWED_HOSTS": "example.com",
}


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"DEBUG": "true"}, "DEBUG"),
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"SECRET_KEY": "django-insecure-" + STRONG_SECRET}, "SECRET_KEY"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS"),
    ],
)
def test_production_refuses_to_start_with_one_line_naming_the_variable(override, named):
    result = manage("check", env={**PRODUCTION, **override})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: refusing to start:")
    assert named in lines[0]


@pytest.mark.parametrize(("variable", "value"), [("DEBUG", "maybe"), ("CONN_MAX_AGE", "a minute")])
def test_a_value_of_the_wrong_type_stops_any_profile_with_one_line_naming_it(variable, value):
    for profile in ("development", "production"):
        result = manage(
            "check",
            env={**PRODUCTION, "DJANGO_SETTINGS_MODULE": f"config.settings.{profile}", variable: value},
        )
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert f"{variable}={value!r}" in lines[0]


def test_production_passes_check_deploy_with_the_minimal_env():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_development_with_no_variables_runs_on_embedded_defaults():
    code = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE']);"
        "print(s.CACHES['default']['BACKEND']);"
        "print(s.CELERY_TASK_ALWAYS_EAGER)"
    )
    result = manage(
        "shell", "--no-imports", "-c", code, env={"DJANGO_SETTINGS_MODULE": "config.settings.development"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "django.core.cache.backends.filebased.FileBasedCache",
        "True",
    ]


def test_the_embedded_cache_is_shared_by_every_process_of_the_host(tmp_path):
    """What seed_demo (or any command) changes in the cache, the running server sees."""
    env = {"DJANGO_SETTINGS_MODULE": "config.settings.development", "CACHE_FILE_DIR": str(tmp_path)}
    written = manage(
        "shell", "--no-imports", "-c", "from django.core.cache import cache; cache.set('k', 'v')", env=env
    )
    assert written.returncode == 0, written.stderr
    read = manage(
        "shell", "--no-imports", "-c", "from django.core.cache import cache; print(cache.get('k'))", env=env
    )
    assert read.returncode == 0, read.stderr
    assert read.stdout.split() == ["v"]


def test_database_and_redis_urls_switch_to_the_real_services():
    code = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE']);"
        "print(s.CACHES['default']['LOCATION']);"
        "print(s.CELERY_BROKER_URL);"
        "print(s.CELERY_TASK_ALWAYS_EAGER)"
    )
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.development",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/app",
        "REDIS_URL": "redis://127.0.0.1:6379",
    }
    result = manage("shell", "--no-imports", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.postgresql",
        "redis://127.0.0.1:6379/0",
        "redis://127.0.0.1:6379/1",
        "False",
    ]


def test_the_admin_lives_at_the_path_from_the_environment():
    code = "from django.urls import reverse; print(reverse('admin:index'))"
    env = {"DJANGO_SETTINGS_MODULE": "config.settings.development", "ADMIN_URL": "backstage-7f3a/"}
    result = manage("shell", "--no-imports", "-c", code, env=env)
    assert result.stdout.strip() == "/backstage-7f3a/"
