"""`make backup`: a timestamped pg_dump (custom format) into BACKUP_DIR, keeping the newest BACKUP_KEEP."""

import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections


def postgres_environment(alias: str = "default") -> tuple[dict[str, str], str]:
    """libpq's variables for the database, so no password ever appears on a command line."""
    database = settings.DATABASES[alias]
    if database["ENGINE"] != "django.db.backends.postgresql":
        raise CommandError(
            "Backups use pg_dump and need PostgreSQL (DATABASE_URL=postgres://...). "
            "For SQLite, copy the database file; for MariaDB, use mariadb-dump."
        )
    env = dict(os.environ)
    for variable, key in (
        ("PGHOST", "HOST"),
        ("PGPORT", "PORT"),
        ("PGUSER", "USER"),
        ("PGPASSWORD", "PASSWORD"),
    ):
        if database.get(key):
            env[variable] = str(database[key])
    return env, str(database["NAME"])


def _client_package() -> str:
    """The Debian package of the pg_dump that matches the server's major version."""
    try:
        major = connections["default"].pg_version // 10_000  # type: ignore[attr-defined]
    except Exception:
        return "postgresql-client-<the server's major version>"
    return f"postgresql-client-{major}, from the PostgreSQL apt repository if Debian's is older"


class Command(BaseCommand):
    help = "Back up the database with pg_dump into BACKUP_DIR, keeping the newest BACKUP_KEEP files."

    def handle(self, *args: Any, **options: Any) -> None:
        env, name = postgres_environment()
        connections.close_all()
        directory = Path(settings.BACKUP_DIR)
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise CommandError(
                f"cannot create BACKUP_DIR {directory} ({error.strerror}): create it for the app's user "
                "(install -d -o <user> -m 700 <dir>) or point BACKUP_DIR at a folder the user owns."
            ) from error
        stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = directory / f"{settings.PROJECT_SLUG}-{name}-{stamp}.dump"
        partial = target.with_suffix(".dump.partial")
        self.stdout.write(f"Backing up database {name!r} to {target} ...")
        if shutil.which("pg_dump") is None:
            raise CommandError(f"pg_dump not found: install the PostgreSQL client ({_client_package()}).")
        # A dump holds every password hash and session: readable by its owner alone. Created here
        # with that mode, since pg_dump keeps the mode of a file that exists and would use the umask.
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        result = subprocess.run(
            ["pg_dump", "--format=custom", "--no-owner", f"--file={partial}", name],
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            if "server version mismatch" in result.stderr:
                # pg_dump refuses a server of a newer major version than its own.
                raise CommandError(
                    f"pg_dump is older than the database server: install {_client_package()} "
                    f"on this host ({result.stderr.strip()})"
                )
            raise CommandError(f"pg_dump failed: {result.stderr.strip()}")
        # Renamed only once complete, so an interrupted dump never passes for a backup.
        partial.rename(target)
        # The newest BACKUP_KEEP stay (the timestamp in the name sorts by time).
        removed = sorted(directory.glob(f"{settings.PROJECT_SLUG}-{name}-*.dump"))[: -settings.BACKUP_KEEP]
        for old in removed:
            old.unlink()
        size_kib = target.stat().st_size / 1024
        self.stdout.write(
            self.style.SUCCESS(
                f"Backup written: {target} ({size_kib:,.0f} KiB); removed {len(removed)} older."
            )
        )
