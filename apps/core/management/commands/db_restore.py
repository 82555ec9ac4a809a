"""`make restore FILE=...`: restore a pg_dump backup, into an empty database unless forced."""

import subprocess
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from apps.core.management.commands.db_backup import postgres_environment


class Command(BaseCommand):
    help = "Restore a backup made by db_backup. Refuses a database that has tables, unless --force."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The .dump file to restore.")
        parser.add_argument(
            "--force", action="store_true", help="Replace the contents of a database that is not empty."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        env, name = postgres_environment()
        backup = Path(options["file"])
        if not backup.is_file():
            raise CommandError(f"No backup file at {backup}.")
        tables = len(connections["default"].introspection.table_names())
        connections.close_all()
        if tables and not options["force"]:
            raise CommandError(
                f"Database {name!r} is not empty ({tables} tables); restoring would overwrite it. "
                "Restore into an empty database, or pass --force (make restore FILE=... FORCE=1)."
            )
        command = ["pg_restore", "--no-owner", "--exit-on-error", "--single-transaction", f"--dbname={name}"]
        if tables:
            command += ["--clean", "--if-exists"]
        self.stdout.write(f"Restoring {backup} into database {name!r} ...")
        # One transaction: a restore that fails half-way leaves the database as it was.
        result = subprocess.run([*command, str(backup)], env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise CommandError(f"pg_restore failed; the database is unchanged: {result.stderr.strip()}")
        self.stdout.write(self.style.SUCCESS(f"Restored {backup} into {name!r}."))
