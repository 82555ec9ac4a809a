"""What `make bench`'s cases need from the seeded data; run with the stack's environment.

    python -m bench.fixtures 100000      # how deep the deep-page case starts

Prints one BENCH_JSON line: an API token for the signed-in case (its requests skip nginx's
cache, which serves only anonymous clients), a staff session cookie for the admin's changelist,
an author and a week of dates to filter by, and the list's cursor for the page that starts
`depth` rows in (or the last page, on a shorter list): the URL a client reaches by following
`next`, built here the way DRF builds it.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Any

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402
from rest_framework.pagination import Cursor  # noqa: E402

from apps.articles import selectors  # noqa: E402
from apps.articles.api.views import ArticleListPagination  # noqa: E402
from apps.users.models import User  # noqa: E402

PAGE_SIZE = 20


def deep_page(depth: int) -> str:
    articles = selectors.article_list_published()
    last = max(0, articles.count() - PAGE_SIZE - 1)
    # The row before the page: a cursor's position is the last row of the page before it.
    before = articles.select_related(None).only("id", "published_at")[min(depth, last)]
    pagination = ArticleListPagination()
    pagination.base_url = reverse("v1:articles:article-list")
    # DRF's stubs type the position as an int; the cursor carries the ordering field's value as text.
    position: Any = str(before.published_at)
    return pagination.encode_cursor(Cursor(offset=0, reverse=False, position=position))


def staff_cookie() -> str:
    staff, _ = User.objects.get_or_create(
        email="bench-staff@example.com", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(staff)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


if __name__ == "__main__":
    reader, _ = User.objects.get_or_create(email="bench-reader@example.com")
    article = selectors.article_list_published().first()
    if article is None:
        raise SystemExit("nothing published to benchmark")
    week_end = (timezone.now() - timedelta(days=30)).date()
    fixtures = {
        "token": Token.objects.get_or_create(user=reader)[0].key,
        "slug": article.slug,
        "prefix": article.title[:3].lower(),
        "author": article.author_id,
        "published_after": str(week_end - timedelta(days=6)),
        "published_before": str(week_end),
        "deep_path": deep_page(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000),
        "admin_path": reverse("admin:articles_article_changelist"),
        "admin_cookie": staff_cookie(),
    }
    print(f"BENCH_JSON {json.dumps(fixtures)}")
