"""Grow the autocomplete index to a given number of titles for `make bench`; run with the stack's env.

    python -m bench.fill_autocomplete 100000

The bench measures autocomplete against an index of BENCH_AUTOCOMPLETE_TITLES (100,000) titles,
more than the seeded articles. The index is rebuilt from the published articles plus synthetic
titles made of the same words as seed_demo's (so the bench's prefixes match some of them), with ids
above every real one, through the same `autocomplete.rebuild` the product uses.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator

import django

django.setup()

from apps.articles import autocomplete  # noqa: E402
from apps.articles.management.commands.seed_demo import WORDS  # noqa: E402
from apps.articles.models import Article  # noqa: E402


def titles(total: int) -> Iterator[Article]:
    published = Article.objects.published().only("id", "title", "slug", "status").order_by("id")
    real = 0
    for article in published.iterator(chunk_size=5_000):
        real += 1
        yield article
    rng = random.Random(100_000)  # noqa: S311 - bench data, not secrets
    first_id = (Article.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    for number in range(max(0, total - real)):
        title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))).capitalize()
        yield Article(id=first_id + number, title=title, slug=f"bench-title-{number}")


if __name__ == "__main__":
    count = autocomplete.rebuild(titles(int(sys.argv[1])))
    print(f'BENCH_JSON {{"titles": {count}}}')
