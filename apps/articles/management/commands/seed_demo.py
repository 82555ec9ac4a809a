"""Realistic demo data, fast: bulk inserts in batches."""

import random
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.utils import timezone
from django.utils.text import slugify

from apps.articles import autocomplete
from apps.articles import cache as article_cache
from apps.articles.models import Article
from apps.users.models import User

BATCH_SIZE = 2_000
VOCABULARY = """
async cache celery django queue redis nginx gunicorn postgres index scale deploy worker beat metrics
schema token session replica backup latency throughput signal router template migration upgrade
pattern service selector factory fixture release rollback monitor
"""
WORDS = VOCABULARY.split()


def _refresh_statistics() -> None:
    """Let the query planner see the new rows now, not whenever autovacuum next looks.

    With the empty table's statistics, PostgreSQL sorts every published row for the first page
    of the public list instead of reading 20 from its index, until autovacuum catches up.
    VACUUM also marks the pages all-visible, so the list's COUNT can use an index-only scan.
    """
    tables = [Article._meta.db_table, User._meta.db_table]
    with connection.cursor() as cursor:
        for table in tables:
            name = connection.ops.quote_name(table)
            if connection.vendor == "postgresql" and not connection.in_atomic_block:
                cursor.execute(f"VACUUM ANALYZE {name}")
            elif connection.vendor in {"postgresql", "sqlite"}:
                cursor.execute(f"ANALYZE {name}")
            elif connection.vendor == "mysql" and not connection.in_atomic_block:
                # ANALYZE TABLE commits implicitly on MySQL/MariaDB: never inside a caller's transaction.
                cursor.execute(f"ANALYZE TABLE {name}")


def _title(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))).capitalize()


def _lifecycle(rng: random.Random, now: datetime) -> tuple[str, datetime | None, datetime | None]:
    """Nine in ten published over the past year, the rest scheduled for the coming days or drafts."""
    roll = rng.random()
    if roll < 0.9:
        return Article.Status.PUBLISHED, now - timedelta(minutes=rng.randint(1, 60 * 24 * 365)), None
    if roll < 0.95:
        return Article.Status.SCHEDULED, None, now + timedelta(hours=rng.randint(1, 72))
    return Article.Status.DRAFT, None, None


class Command(BaseCommand):
    help = "Create demo users and articles (most published, some scheduled or draft)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--articles", type=int, default=1_000, help="How many articles (default 1000).")
        parser.add_argument("--users", type=int, default=20, help="How many authors (default 20).")
        parser.add_argument("--seed", type=int, default=None, help="Random seed, for repeatable data.")

    def handle(self, *args: Any, **options: Any) -> None:
        rng = random.Random(options["seed"])  # noqa: S311 - demo data, not secrets
        run = f"{timezone.now():%Y%m%d%H%M%S}{rng.randrange(1000):03d}"
        # One hash for every demo user: hashing each would take minutes at Argon2's cost.
        password = make_password("demo-password")
        authors = User.objects.bulk_create(
            [
                User(
                    email=f"demo-{run}-{i}@example.com",
                    first_name=rng.choice(WORDS).title(),
                    last_name="Demo",
                    password=password,
                )
                for i in range(options["users"])
            ],
            batch_size=BATCH_SIZE,
        )
        if not authors:
            return

        now = timezone.now()
        for start in range(0, options["articles"], BATCH_SIZE):
            size = min(BATCH_SIZE, options["articles"] - start)
            articles: list[Article] = []
            for i in range(size):
                title = _title(rng)
                status, published_at, publish_at = _lifecycle(rng, now)
                articles.append(
                    Article(
                        title=title,
                        slug=f"{slugify(title)[:180]}-{run}-{start + i}",
                        body="\n\n".join(_title(rng) + "." for _ in range(5)),
                        author=rng.choice(authors),
                        status=status,
                        published_at=published_at,
                        publish_at=publish_at,
                        author_notification_claimed_at=published_at,
                        author_notified_at=published_at,
                    )
                )
            Article.objects.bulk_create(articles)
            # A large seed runs for minutes: say how far it got rather than sit silent.
            if options["articles"] > BATCH_SIZE:
                self.stdout.write(f"{start + size:,} of {options['articles']:,} articles", ending="\r")
                self.stdout.flush()
        if options["articles"] > BATCH_SIZE:
            self.stdout.write("")
        _refresh_statistics()
        article_cache.invalidate()
        self.stdout.write(
            self.style.SUCCESS(f"Created {len(authors)} user(s) and {options['articles']} article(s).")
        )
        self.stdout.write(_autocomplete_note())


def _autocomplete_note() -> str:
    """What becomes of the new titles in autocomplete, on this configuration."""
    if autocomplete.client() is None:
        return "Autocomplete answers from the database (no Redis configured for it): nothing to index."
    return (
        "Autocomplete catches up by itself: with no index yet, a lookup answers from the database and "
        "queues a rebuild; an existing index gets the new titles at beat's next sweep (every "
        f"{autocomplete.heal_interval():g}s). `manage.py rebuild_autocomplete` indexes them now."
    )
