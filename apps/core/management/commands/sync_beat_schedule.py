"""manage.py sync_beat_schedule: bring the database's beat entries in line with the code."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.core.tasks.beat import sync_beat_schedule


class Command(BaseCommand):
    help = (
        "Sync CELERY_BEAT_SCHEDULE into django-celery-beat's tables: add new entries, update changed "
        "ones, disable those removed from code. Entries created in the admin are left alone. "
        "Beat does this on start; run it after a deploy to apply a schedule change without a beat restart."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = sync_beat_schedule(settings.CELERY_BEAT_SCHEDULE)
        self.stdout.write(f"beat schedule synced: {report}")
