"""Response caching for the public article endpoints, invalidated as a whole on any change.

Every cached value is stored with the generation token it was built under, and a read fetches
the current token and the values in one round trip (MGET), keeping only values of the current
generation. A change to any article replaces the token, so no reader can see a page cached
before the change; the stale entry is overwritten by the next miss or expires. The token is
random, never a counter: if the cache evicts it, the next one cannot coincide with a generation
whose pages are still cached.

A cached read costs one round trip to Redis and a miss two (the read, then the write), however
many values the response needs: on a busy host each round trip is a system call on both sides.
"""

import hashlib
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache

from apps.core import public_cache

GENERATION_KEY = "articles:generation"


def key(kind: str, identity: str) -> str:
    digest = hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()
    return f"articles:{kind}:{digest}"


def _start_generation() -> str | None:
    # add() keeps whichever token another process set first; read back the winner.
    cache.add(GENERATION_KEY, uuid.uuid4().hex, timeout=None)
    return cache.get(GENERATION_KEY)


def read(*keys: str) -> tuple[str | None, list[Any]]:
    """The current generation and each key's value if cached under it (else None), in one MGET.

    The generation is None when the cache is down: then nothing is read or written.
    """
    found = cache.get_many([GENERATION_KEY, *keys])
    generation = found.get(GENERATION_KEY)
    if generation is None:
        generation = _start_generation()
    values = []
    for name in keys:
        entry = found.get(name)
        if generation is not None and isinstance(entry, tuple) and len(entry) == 2 and entry[0] == generation:
            values.append(entry[1])
        else:
            values.append(None)
    return generation, values


def write(name: str, value: Any, generation: str | None) -> None:
    """Cache `value` under the generation the caller read it in; nothing when the cache is down."""
    if generation is not None:
        cache.set(name, (generation, value), timeout=settings.ARTICLES_CACHE_TIMEOUT)


def invalidate() -> None:
    cache.set(GENERATION_KEY, uuid.uuid4().hex, timeout=None)
    # The front layer's copies in this process; other processes drop theirs within
    # PUBLIC_CACHE_LOCAL_SECONDS (apps/core/public_cache.py).
    public_cache.forget_local()
