"""The Redis cache client, counting hits and misses (statsd `cache.get.hit` / `cache.get.miss`),
and the raw redis-py client and key names of that cache, for what Django's cache API cannot say
(pipelines, raw values)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django_redis.client import DefaultClient

from apps.core.observability import metrics

_MISSING = object()


class MeasuredRedisClient(DefaultClient):
    """django-redis's default client; every `get` and `get_many` also counts its hits and misses.

    A Redis error is neither: it propagates to django-redis, which logs it and, with
    IGNORE_EXCEPTIONS, answers the default.
    """

    def get(
        self, key: Any, default: Any | None = None, version: int | None = None, client: Any = None
    ) -> Any:
        value = super().get(key, default=_MISSING, version=version, client=client)
        if value is _MISSING:
            metrics.incr("cache.get.miss")
            return default
        metrics.incr("cache.get.hit")
        return value

    def get_many(self, keys: Collection[Any], version: int | None = None, client: Any = None) -> dict:
        found = super().get_many(keys, version=version, client=client)
        if found:
            metrics.incr("cache.get.hit", len(found))
        if len(keys) > len(found):
            metrics.incr("cache.get.miss", len(keys) - len(found))
        return found


def raw_client() -> Any | None:
    """The default cache's redis-py client (its pool, Sentinel included), or None when the cache is
    not django-redis (the file cache of a first run)."""
    from django.core.cache import cache

    get_client = getattr(getattr(cache, "client", None), "get_client", None)
    return None if get_client is None else get_client(write=True)


def raw_key(name: str) -> str:
    """The Redis key the default cache uses for its key `name` (prefix and version included)."""
    from django.core.cache import cache

    return str(cache.make_key(name))
