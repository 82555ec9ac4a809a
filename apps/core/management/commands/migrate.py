"""Django's migrate, with a one-line error when the database cannot be reached.

The first command of `make run` and of every deploy: a database that does not exist yet (the
usual first-run mistake) would otherwise end it in a long traceback from the driver.
"""

from typing import Any

from django.core.management.base import CommandError
from django.core.management.commands.migrate import Command as DjangoMigrateCommand
from django.db import OperationalError, connections


def unreachable_database_message(alias: str, error: OperationalError) -> str:
    settings_dict = connections[alias].settings_dict
    name = settings_dict["NAME"]
    where = f"{settings_dict.get('HOST') or 'localhost'}:{settings_dict.get('PORT') or 'default port'}"
    reason = " ".join(str(error).split()).removeprefix("connection failed: ")
    message = f"cannot connect to the database {name!r} at {where} (DATABASE_URL): {reason}"
    if connections[alias].vendor == "postgresql" and f'database "{name}" does not exist' in reason:
        command = ["createdb"] + [
            f"{flag} {settings_dict[key]}"
            for flag, key in (("-h", "HOST"), ("-p", "PORT"), ("-U", "USER"))
            if settings_dict.get(key)
        ]
        message += f". Create it with: {' '.join([*command, name])}"
    return message


class Command(DjangoMigrateCommand):
    def handle(self, *args: Any, **options: Any) -> None:
        alias = options["database"]
        try:
            connections[alias].ensure_connection()
        except OperationalError as error:
            raise CommandError(unreachable_database_message(alias, error)) from None
        super().handle(*args, **options)
