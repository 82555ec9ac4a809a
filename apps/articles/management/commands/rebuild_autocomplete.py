from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.articles import autocomplete, selectors
from apps.core.management.progress import ProgressBar


class Command(BaseCommand):
    help = "Rebuild the Redis autocomplete index of published article titles from the database."

    def handle(self, *args: Any, **options: Any) -> None:
        published = selectors.article_list_indexable()
        progress = ProgressBar(published.count(), "Indexing titles")
        try:
            count = autocomplete.rebuild(published.iterator(chunk_size=5_000), on_batch=progress.advance)
        except RuntimeError as error:
            raise CommandError(str(error)) from error
        progress.finish()
        self.stdout.write(self.style.SUCCESS(f"Indexed {count} published title(s)."))
