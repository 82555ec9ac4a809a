"""Grow the articles table to a given size with PostgreSQL's COPY, for `make bench-scale`.

    python -m bench.seed_copy 1000000      # run with the stack's environment

Rows like seed_demo's (nine in ten published over the past year, the rest scheduled or drafts,
every publication email already marked sent), by the authors seed_demo made, streamed through one
COPY instead of bulk INSERTs: a million rows load in a minute or so, not in a quarter of an hour.
Then VACUUM ANALYZE, as seed_demo does, so the planner sees the table as it now is.
"""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import timedelta

import django

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from apps.articles import cache as article_cache  # noqa: E402
from apps.articles.management.commands.seed_demo import WORDS, _refresh_statistics  # noqa: E402
from apps.articles.models import Article  # noqa: E402
from apps.users.models import User  # noqa: E402

COLUMNS = [
    "title",
    "slug",
    "body",
    "author_id",
    "status",
    "publish_at",
    "published_at",
    "author_notification_claimed_at",
    "author_notified_at",
    "created_at",
    "updated_at",
]


def grow(total: int, seed: int = 8) -> int:
    rng = random.Random(seed + total)  # noqa: S311 - bench data, not secrets
    authors = list(User.objects.filter(email__startswith="demo-").values_list("id", flat=True))
    if not authors:
        raise SystemExit("no demo authors: run `manage.py seed_demo --articles 0` first")
    start = Article.objects.count()
    # Pools of titles and bodies, drawn from per row: building each from words costs more than the COPY.
    titles = [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))).capitalize() for _ in range(5_000)
    ]
    bodies = ["\n\n".join(rng.choice(titles) + "." for _ in range(5)) for _ in range(1_000)]
    now = timezone.now()
    year = 60 * 24 * 365
    table = connection.ops.quote_name(Article._meta.db_table)
    with connection.cursor() as cursor:
        # Production's statement timeout guards requests; one COPY of a million rows takes minutes.
        cursor.execute("SET statement_timeout = 0")
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN") as copy,
    ):
        for number in range(start, total):
            roll = rng.random()
            published_at = publish_at = None
            if roll < 0.9:
                status, published_at = (
                    "published",
                    now - timedelta(minutes=rng.randint(1, year), seconds=rng.random()),
                )
            elif roll < 0.95:
                # Not due during the bench: beat publishing them would change what is measured.
                status, publish_at = "scheduled", now + timedelta(days=2, hours=rng.randint(1, 72))
            else:
                status = "draft"
            created = published_at or now
            copy.write_row(
                (
                    rng.choice(titles),
                    f"bench-{number}",
                    rng.choice(bodies),
                    rng.choice(authors),
                    status,
                    publish_at,
                    published_at,
                    published_at,
                    published_at,
                    created,
                    created,
                )
            )
    _refresh_statistics()
    article_cache.invalidate()
    return max(0, total - start)


if __name__ == "__main__":
    began = time.monotonic()
    added = grow(int(sys.argv[1]))
    print(f"BENCH_JSON {json.dumps({'added': added, 'seconds': round(time.monotonic() - began, 1)})}")
