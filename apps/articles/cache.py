"""The articles API's view cache: list pages and articles, dropped all at once by any change.

Anonymous reads are answered by nginx's micro-cache before they reach Django; this cache serves
the reads nginx passes on (signed-in clients), and anonymous readers while the database is down
(a signed-in reader needs the database to be known).
Each value is stored with the generation token current when it was built, and a change to any
article replaces the token, so no reader takes a value cached before the change. The token and the
value are read in one round trip (a miss costs one more, the write). The token is random, never a
counter: if the cache evicts it, the next one cannot coincide with one stored beside a value.
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
    key = f"articles:{hashlib.blake2b(name.encode(), digest_size=16).hexdigest()}"
    found = cache.get_many([GENERATION_KEY, key])
    generation = found.get(GENERATION_KEY) or cache.get_or_set(GENERATION_KEY, _new_generation, timeout=None)
    stored: tuple[str, T] | None = found.get(key)
    if stored is not None and stored[0] == generation:
        return stored[1]
    value = build()
    cache.set(key, (generation, value), timeout=settings.ARTICLES_CACHE_TIMEOUT)
    return value


def invalidate() -> None:
    cache.set(GENERATION_KEY, _new_generation(), timeout=None)
