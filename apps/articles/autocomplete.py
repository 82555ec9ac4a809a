"""Title autocomplete from a Redis sorted set, with the database as the fallback.

Every member has score 0, so Redis orders them lexicographically and ZRANGEBYLEX answers a
prefix query in O(log N + 10). A member carries everything the response needs, so a lookup
is one round trip:

    "<casefolded title>\\x1f<id>\\x1f<slug>\\x1f<title>"

A hash maps each article id to its current member so that an edit or unpublish can remove the
old one. Redis is an index here, never the source of truth: `rebuild_index` recreates it from
the database, and a Redis outage makes lookups fall back to the database.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import redis
from django.conf import settings

from apps.articles import selectors
from apps.articles.models import Article
from apps.core.redis import redis_client

logger = logging.getLogger(__name__)

SUGGESTION_LIMIT = 10
QUERY_MAX_LENGTH = 100
_SEPARATOR = "\x1f"
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Suggestion:
    title: str
    slug: str


def normalize(text: str) -> str:
    return _CONTROL_CHARACTERS.sub(" ", text).casefold().strip()


def _keys() -> tuple[str, str]:
    prefix = settings.AUTOCOMPLETE_KEY_PREFIX
    return f"{prefix}:articles:titles", f"{prefix}:articles:members"


def client() -> redis.Redis | None:
    """The autocomplete Redis, or None when none is configured (embedded development)."""
    url = settings.AUTOCOMPLETE_REDIS_URL
    return redis_client(url) if url else None


def _member(article: Article) -> str:
    return _SEPARATOR.join([normalize(article.title), str(article.pk), article.slug, article.title])


def index_article(article: Article) -> None:
    """Add, update or remove one article's entry to match its current state."""
    redis_client = client()
    if redis_client is None:
        return
    titles_key, members_key = _keys()
    old_member = cast(bytes | None, redis_client.hget(members_key, str(article.pk)))
    pipeline = redis_client.pipeline(transaction=True)
    if old_member is not None:
        pipeline.zrem(titles_key, old_member)
    if article.is_published:
        member = _member(article)
        pipeline.zadd(titles_key, {member: 0})
        pipeline.hset(members_key, str(article.pk), member)
    else:
        pipeline.hdel(members_key, str(article.pk))
    pipeline.execute()


def remove_article(article_id: int) -> None:
    redis_client = client()
    if redis_client is None:
        return
    titles_key, members_key = _keys()
    old_member = cast(bytes | None, redis_client.hget(members_key, str(article_id)))
    pipeline = redis_client.pipeline(transaction=True)
    if old_member is not None:
        pipeline.zrem(titles_key, old_member)
    pipeline.hdel(members_key, str(article_id))
    pipeline.execute()


def rebuild(articles: Iterable[Article], batch_size: int = 5_000, on_batch=None) -> int:
    """Replace the whole index with `articles`; readers see the old index until the swap."""
    redis_client = client()
    if redis_client is None:
        raise RuntimeError("No Redis configured for autocomplete (AUTOCOMPLETE_REDIS_URL / REDIS_URL).")
    titles_key, members_key = _keys()
    building_titles, building_members = f"{titles_key}:building", f"{members_key}:building"
    redis_client.delete(building_titles, building_members)
    count = 0
    batch: list[Article] = []

    def flush() -> None:
        pipeline = redis_client.pipeline(transaction=False)
        pipeline.zadd(building_titles, {_member(article): 0 for article in batch})
        pipeline.hset(building_members, mapping={str(article.pk): _member(article) for article in batch})
        pipeline.execute()
        if on_batch is not None:
            on_batch(len(batch))
        batch.clear()

    for article in articles:
        batch.append(article)
        count += 1
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    pipeline = redis_client.pipeline(transaction=True)
    if count:
        pipeline.rename(building_titles, titles_key)
        pipeline.rename(building_members, members_key)
    else:
        pipeline.delete(titles_key, members_key)
    pipeline.execute()
    return count


def _search_redis(redis_client: redis.Redis, query: str) -> list[Suggestion]:
    titles_key, _ = _keys()
    prefix = normalize(query).encode()
    members: list[bytes] = redis_client.zrangebylex(  # type: ignore[assignment]
        titles_key, b"[" + prefix, b"[" + prefix + b"\xff", start=0, num=SUGGESTION_LIMIT
    )
    suggestions = []
    for member in members:
        _, _, slug, title = member.decode().split(_SEPARATOR, 3)
        suggestions.append(Suggestion(title=title, slug=slug))
    return suggestions


def search(query: str) -> tuple[list[Suggestion], str]:
    """Up to ten published titles starting with `query`, and which source answered."""
    redis_client = client()
    if redis_client is not None:
        try:
            return _search_redis(redis_client, query), "redis"
        except redis.RedisError as error:
            logger.warning("autocomplete falling back to the database: %s", error)
    articles = selectors.article_list_by_title_prefix(prefix=query.strip(), limit=SUGGESTION_LIMIT)
    return [Suggestion(title=article.title, slug=article.slug) for article in articles], "database"
