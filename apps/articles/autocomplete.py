"""Title autocomplete from a Redis sorted set, with the database as the fallback.

Every member has score 0, so ZRANGEBYLEX answers a prefix query; a member carries everything the
response needs, so a lookup is one round trip:

    "<casefolded title>\\x1f<id>\\x1f<slug>\\x1f<title>"

A hash maps each article id to its member, so that an edit can remove the old one. Redis is an
index here, never the source of truth: a marker key written by a rebuild tells a missing index
(lookups then answer from the database and queue a rebuild), and `sweep_index` catches up with
changes whose message was lost.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import cast

import redis
from django.conf import settings
from django.utils import timezone

from apps.articles import selectors
from apps.articles.models import Article
from apps.core.data.redis import redis_client

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


def _marker_keys() -> tuple[str, str, str]:
    """The index's marker (when it was built), the last sweep's start, the rebuild-queued guard."""
    prefix = f"{settings.AUTOCOMPLETE_KEY_PREFIX}:articles"
    return f"{prefix}:built", f"{prefix}:swept", f"{prefix}:rebuild-queued"


def heal_interval() -> float:
    """Seconds between index sweeps; also how often a missing index may queue a rebuild."""
    return float(settings.CELERY_BEAT_SCHEDULE["articles.reindex-changed"]["schedule"])


def client() -> redis.Redis | None:
    """The autocomplete Redis, or None when none is configured (embedded development)."""
    url = settings.AUTOCOMPLETE_REDIS_URL
    return redis_client(url) if url else None


def _member(article: Article) -> str:
    return _SEPARATOR.join([normalize(article.title), str(article.pk), article.slug, article.title])


def index_article(article_id: int, article: Article | None) -> None:
    """Make one article's entry match its current state: there while published, else gone."""
    redis_client = client()
    if redis_client is None:
        return
    titles_key, members_key = _keys()
    old_member = cast(bytes | None, redis_client.hget(members_key, str(article_id)))
    pipeline = redis_client.pipeline(transaction=True)
    if old_member is not None:
        pipeline.zrem(titles_key, old_member)
    if article is not None and article.is_published:
        member = _member(article)
        pipeline.zadd(titles_key, {member: 0})
        pipeline.hset(members_key, str(article_id), member)
    else:
        pipeline.hdel(members_key, str(article_id))
    pipeline.execute()


def rebuild(articles: Iterable[Article], batch_size: int = 1_000) -> int:
    """Replace the whole index with `articles`; readers see the old index until the swap.

    Each batch is one pipeline, which must answer within REDIS_SOCKET_TIMEOUT like any request's
    call: at a million titles on a busy host, batches of 5,000 timed out and the rebuild never ended."""
    redis_client = client()
    if redis_client is None:
        raise RuntimeError("No Redis configured for autocomplete (AUTOCOMPLETE_REDIS_URL / REDIS_URL).")
    started = time.time()
    titles_key, members_key = _keys()
    built_key, swept_key, _ = _marker_keys()
    # Keys of this build alone: two rebuilds that overlap must not write into each other's.
    build = uuid.uuid4().hex
    building_titles, building_members = f"{titles_key}:building:{build}", f"{members_key}:building:{build}"
    count = 0
    remaining = iter(articles)
    while batch := list(islice(remaining, batch_size)):
        members = {str(article.pk): _member(article) for article in batch}
        pipeline = redis_client.pipeline(transaction=False)
        pipeline.zadd(building_titles, dict.fromkeys(members.values(), 0))
        pipeline.hset(building_members, mapping=members)
        # A build whose process dies half way leaves nothing behind for long.
        pipeline.expire(building_titles, 3600)
        pipeline.expire(building_members, 3600)
        pipeline.execute()
        count += len(batch)
    pipeline = redis_client.pipeline(transaction=True)
    if count:
        pipeline.rename(building_titles, titles_key)
        pipeline.rename(building_members, members_key)
        pipeline.persist(titles_key)
        pipeline.persist(members_key)
    else:
        pipeline.delete(titles_key, members_key)
    pipeline.set(built_key, int(started))
    # Changes made while this build read the database are the next sweep's to reindex.
    pipeline.set(swept_key, int(started))
    pipeline.execute()
    return count


def rebuild_from_database() -> int:
    return rebuild(selectors.article_list_indexable().iterator(chunk_size=5_000))


def _queue_rebuild(redis_client: redis.Redis) -> None:
    """Queue one background rebuild per heal interval, however many lookups find the index missing."""
    from apps.articles import tasks
    from apps.core.tasks import enqueue

    _, _, guard_key = _marker_keys()
    if redis_client.set(guard_key, 1, nx=True, ex=max(1, int(heal_interval()))):
        logger.warning("autocomplete index missing; answering from the database while it is rebuilt")
        enqueue(tasks.rebuild_autocomplete_index)


def sweep_index(*, now: datetime | None = None) -> str:
    """Bring the index up to date with the database, whatever messages were lost on the way.

    Missing (no marker): rebuilt. Otherwise the articles changed since the previous sweep started
    (with one interval of overlap, for transactions that committed late) are reindexed, and a size
    that still disagrees with the database (a deletion whose message was lost) means a rebuild.
    Returns what it did.
    """
    redis_client = client()
    if redis_client is None:
        return "no index configured"
    now = now or timezone.now()
    built_key, swept_key, _ = _marker_keys()
    built, swept = cast(list[bytes | None], redis_client.mget(built_key, swept_key))
    if built is None:
        return f"rebuilt: {rebuild_from_database()} title(s), the index was missing"
    since = datetime.fromtimestamp(int(swept or built), tz=UTC) - timedelta(seconds=heal_interval())
    reindexed = 0
    for article in selectors.article_list_changed_since(since=since).iterator(chunk_size=1_000):
        index_article(article.pk, article)
        reindexed += 1
    redis_client.set(swept_key, int(now.timestamp()))
    titles_key, _ = _keys()
    indexed, published = redis_client.zcard(titles_key), selectors.article_list_indexable().count()
    if indexed != published:
        return (
            f"rebuilt: {rebuild_from_database()} title(s), the index held {indexed} "
            f"for {published} published (after reindexing {reindexed} changed)"
        )
    return f"reindexed {reindexed} changed article(s)"


def _search_redis(redis_client: redis.Redis, query: str) -> list[Suggestion] | None:
    """The suggestions from the index, or None when the index is missing (no marker)."""
    titles_key, _ = _keys()
    built_key, _, _ = _marker_keys()
    prefix = normalize(query).encode()
    # One round trip: the marker and the lookup.
    pipeline = redis_client.pipeline(transaction=False)
    pipeline.exists(built_key)
    pipeline.zrangebylex(titles_key, b"[" + prefix, b"[" + prefix + b"\xff", start=0, num=SUGGESTION_LIMIT)
    built, members = pipeline.execute()
    if not built:
        return None
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
            suggestions = _search_redis(redis_client, query)
            if suggestions is not None:
                return suggestions, "redis"
            _queue_rebuild(redis_client)
        except redis.RedisError as error:
            logger.warning("autocomplete falling back to the database: %s", error)
    articles = selectors.article_list_by_title_prefix(prefix=query.strip(), limit=SUGGESTION_LIMIT)
    return [Suggestion(title=article.title, slug=article.slug) for article in articles], "database"
