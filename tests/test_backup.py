"""Backups that restore: write data, back up, drop the database, restore, and find every row."""

import configparser
import os
import shlex
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.integration


def psql(sql: str, database: str = "postgres") -> str:
    result = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-tAc", sql],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory) -> Iterator[str]:
    """A migrated database to copy: migrating once saves a minute per test."""
    name = f"backup_template_{os.getpid()}"
    psql(f'DROP DATABASE IF EXISTS "{name}"')
    psql(f'CREATE DATABASE "{name}"')
    manage(name, tmp_path_factory.mktemp("unused"), "migrate", "--no-input")
    yield name
    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database(migrated_template: str) -> Iterator[str]:
    name = f"backup_{os.getpid()}"
    psql(f'DROP DATABASE IF EXISTS "{name}"')
    psql(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template}"')
    yield name
    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(
    database: str, backup_dir: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.development",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
        "BACKUP_DIR": str(backup_dir),
        "BACKUP_KEEP": "2",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    if check and result.returncode != 0:
        pytest.fail(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def seed_users(database: str, backup_dir: Path, count: int) -> None:
    """`count` users written through the app, as any fork has them (the example app may be gone)."""
    code = (
        "from apps.users.models import User; "
        f"User.objects.bulk_create(User(email=f'reader{{n}}@example.com') for n in range({count}))"
    )
    manage(database, backup_dir, "shell", "--no-imports", "-c", code)


def test_a_backup_restores_every_row_into_an_empty_database(database, tmp_path):
    seed_users(database, tmp_path, 300)
    before = psql("SELECT count(*), sum(length(email)) FROM users_user", database)

    output = manage(database, tmp_path, "db_backup").stdout
    backups = sorted(tmp_path.glob("*.dump"))
    assert len(backups) == 1
    assert "Backup written" in output

    psql(f'DROP DATABASE "{database}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{database}"')
    manage(database, tmp_path, "db_restore", str(backups[0]))

    assert psql("SELECT count(*), sum(length(email)) FROM users_user", database) == before
    assert before.startswith("300|")


def test_restore_refuses_a_database_that_is_not_empty_unless_forced(database, tmp_path):
    manage(database, tmp_path, "db_backup")
    backup = next(tmp_path.glob("*.dump"))
    seed_users(database, tmp_path, 5)

    refused = manage(database, tmp_path, "db_restore", str(backup), check=False)
    assert refused.returncode != 0
    assert "is not empty" in refused.stderr
    assert psql("SELECT count(*) FROM users_user", database) == "5"

    manage(database, tmp_path, "db_restore", str(backup), "--force")
    assert psql("SELECT count(*) FROM users_user", database) == "0"


def test_only_the_newest_backups_are_kept(database, tmp_path):
    for _ in range(3):
        manage(database, tmp_path, "db_backup")
    assert len(list(tmp_path.glob("*.dump"))) == 2


def test_backup_on_sqlite_is_refused_with_a_clear_error(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.development",
        "DATABASE_URL": "sqlite:///x",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "db_backup"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "need PostgreSQL" in result.stderr


def test_a_backup_directory_that_cannot_be_made_is_named_in_one_line(database, tmp_path):
    # The suite runs as root, whom permissions do not stop: a file in the way stands in for a
    # parent the app's user may not write (BACKUP_DIR=/var/backups/<slug> as the app's user).
    (tmp_path / "not-a-folder").write_text("")
    backup_dir = tmp_path / "not-a-folder" / "backups"
    result = manage(database, backup_dir, "db_backup", check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"cannot create BACKUP_DIR {backup_dir}" in result.stderr


def test_a_backup_and_its_directory_are_readable_by_their_owner_alone(database, tmp_path):
    backup_dir = tmp_path / "new-backups"
    manage(database, backup_dir, "db_backup")
    (backup,) = backup_dir.glob("*.dump")
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert stat.S_IMODE(backup_dir.stat().st_mode) == 0o700


def test_the_backup_timers_service_runs_make_backup_with_the_production_settings(database, tmp_path):
    """deploy/systemd/app-backup@.service's command, with its environment, as the timer starts it."""
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "deploy" / "systemd" / "app-backup@.service")
    service = unit["Service"]
    environment = dict(line.split("=", 1) for line in service["Environment"].splitlines())
    assert environment["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    command = shlex.split(service["ExecStart"])
    assert Path(command[0]).is_file(), command
    backup_dir = tmp_path / "timer"
    result = subprocess.run(
        command,
        cwd=ROOT,
        env={
            "PATH": os.environ["PATH"],
            **environment,
            # What the host's .env gives it (docs/production.md, step 5).
            "SECRET_KEY": "timer-test-" + "x" * 60,
            "ALLOWED_HOSTS": "example.com",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
            "BACKUP_DIR": str(backup_dir),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Backup written" in result.stdout
    assert len(list(backup_dir.glob("*.dump"))) == 1
