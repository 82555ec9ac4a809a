"""Redis clients for the roles that are not Django's cache, e.g. the autocomplete index.

    from apps.core.data.redis import redis_client
    redis_client(settings.AUTOCOMPLETE_REDIS_URL).zadd(...)   # replies are bytes

One client (and so one connection pool) per URL and process. Timeouts are short, like the
cache's: a slow Redis makes the feature fail fast instead of holding a web worker.
"""

from functools import cache

import redis
from django.conf import settings


@cache
def redis_client(url: str) -> redis.Redis:
    if not url:
        raise ValueError("No Redis URL for this role: set REDIS_URL or the role's own *_REDIS_URL.")
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT,
        socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
    )
