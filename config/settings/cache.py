"""Cache and Redis: one server URL, each role in its own database; files on this host without one.

Each role can move to its own server with its own URL: CACHE_REDIS_URL, SESSION_REDIS_URL,
AUTOCOMPLETE_REDIS_URL and CELERY_BROKER_URL (docs/scale-out.md, "Redis roles"). The broker's
keys never share an eviction policy with the cache's.
"""

from __future__ import annotations

from typing import Any

from config.env import env_value

REDIS_URL = env_value("REDIS_URL")
REDIS_SOCKET_TIMEOUT = env_value("REDIS_SOCKET_TIMEOUT")
CACHE_REDIS_URL = env_value("CACHE_REDIS_URL")
# The cache through Redis Sentinel: the sentinels name the current primary, so a failover needs
# no configuration change. Set, these replace CACHE_REDIS_URL.
CACHE_REDIS_SENTINELS: list[str] = env_value("CACHE_REDIS_SENTINELS")
CACHE_REDIS_SENTINEL_MASTER = env_value("CACHE_REDIS_SENTINEL_MASTER")
# Sessions' own Redis; unset, sessions live in the cache.
SESSION_REDIS_URL = env_value("SESSION_REDIS_URL")
CACHE_KEY_PREFIX = env_value("CACHE_KEY_PREFIX")


def redis_cache(location: str) -> dict[str, Any]:
    """A django-redis cache at `location`; IGNORE_EXCEPTIONS turns an outage into cache misses."""
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": location,
        "KEY_PREFIX": CACHE_KEY_PREFIX,
        "OPTIONS": {
            # django-redis's default client, counting hits and misses for statsd.
            "CLIENT_CLASS": "apps.core.data.cache.MeasuredRedisClient",
            "PARSER_CLASS": "redis.connection._HiredisParser",
            "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            "IGNORE_EXCEPTIONS": True,
        },
    }


def sentinel_cache(sentinels: list[str], master: str) -> dict[str, Any]:
    """A django-redis cache on the primary that the sentinels (host:port) name `master`."""
    cache = redis_cache(f"redis://{master}/0")
    cache["OPTIONS"].update(
        {
            "CLIENT_CLASS": "django_redis.client.SentinelClient",
            "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
            "SENTINELS": [(host, int(port)) for host, port in (s.rsplit(":", 1) for s in sentinels)],
            "SENTINEL_KWARGS": {
                "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
                "socket_timeout": REDIS_SOCKET_TIMEOUT,
            },
        }
    )
    return cache


# Cache: Redis when configured (directly or through Sentinel), else files on this host. Files, not
# memory: a management command (seed_demo, a shell) and the server must see one cache, or a change
# made by one leaves the other serving stale pages until they expire.
CACHES: dict[str, dict[str, Any]]
if CACHE_REDIS_SENTINELS:
    CACHES = {"default": sentinel_cache(CACHE_REDIS_SENTINELS, CACHE_REDIS_SENTINEL_MASTER)}
elif CACHE_REDIS_URL:
    CACHES = {"default": redis_cache(CACHE_REDIS_URL)}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(env_value("CACHE_FILE_DIR")),
        }
    }
# Log the swallowed Redis errors: an outage must be visible even though requests succeed.
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
DJANGO_REDIS_LOGGER = "apps.core.data.cache"

# Sessions: read from the cache, written through to the database (a Redis outage loses nothing).
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
if SESSION_REDIS_URL:
    CACHES["sessions"] = redis_cache(SESSION_REDIS_URL)
    SESSION_CACHE_ALIAS = "sessions"
