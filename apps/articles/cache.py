"""Response caching for the public article endpoints, invalidated as a whole on any change.

Every cache key embeds a generation token. A change to any article replaces the token, so no
reader can see a page cached before the change. The token is random, never a counter: if the
cache evicts it, the next one cannot coincide with a generation whose pages are still cached.
"""

import hashlib
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache

GENERATION_KEY = "articles:generation"


def _generation() -> str | None:
    generation = cache.get(GENERATION_KEY)
    if generation is None:
        cache.add(GENERATION_KEY, uuid.uuid4().hex, timeout=None)
        generation = cache.get(GENERATION_KEY)
    return generation  # None when the cache is down: then nothing is cached.


def invalidate() -> None:
    cache.set(GENERATION_KEY, uuid.uuid4().hex, timeout=None)


def response_key(kind: str, identity: str) -> str | None:
    generation = _generation()
    if generation is None:
        return None
    digest = hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()
    return f"articles:{kind}:{generation}:{digest}"


def get(key: str | None) -> Any:
    return None if key is None else cache.get(key)


def put(key: str | None, value: Any) -> None:
    if key is not None:
        cache.set(key, value, timeout=settings.ARTICLES_CACHE_TIMEOUT)
