from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.articles import autocomplete


class Command(BaseCommand):
    help = "Rebuild the Redis autocomplete index of published article titles from the database."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = autocomplete.rebuild_from_database()
        except RuntimeError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(self.style.SUCCESS(f"Indexed {count} published title(s)."))
