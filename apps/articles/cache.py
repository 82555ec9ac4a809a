"""The articles API's view cache: list pages and articles, dropped all at once by any change.

Anonymous reads are answered by nginx's micro-cache before they reach Django; this cache serves
the reads nginx passes on (signed-in clients), and anonymous readers while the database is down
(a signed-in reader needs the database to be known).
Each key carries the current generation token, and a change to any article replaces the token,
so no reader sees a value cached before the change. The token is random, never a counter: if
the cache evicts it, the next one cannot coincide with a generation whose values are still cached.
"""

import hashlib
import uuid
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache

GENERATION_KEY = "articles:generation"
T = TypeVar("T")


def _new_generation() -> str:
    return uuid.uuid4().hex


def cached(name: str, build: Callable[[], T]) -> T:
    """`build()`'s value, from the cache unless an article changed since it was stored.

    With the cache down, Django's cache API misses and this returns `build()` every time.
    """
    generation = cache.get_or_set(GENERATION_KEY, _new_generation, timeout=None)
    digest = hashlib.blake2b(name.encode(), digest_size=16).hexdigest()
    key = f"articles:{generation}:{digest}"
    value: T | None = cache.get(key)
    if value is None:
        value = build()
        cache.set(key, value, timeout=settings.ARTICLES_CACHE_TIMEOUT)
    return value


def invalidate() -> None:
    cache.set(GENERATION_KEY, _new_generation(), timeout=None)
