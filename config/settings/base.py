"""Settings shared by every profile.

Every value comes from the environment (or `.env`) through the one `env` reader below.
The profiles (development, test, production) only change defaults, never code paths.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config import project_apps

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# The process environment wins over `.env`, so an operator's export always takes effect.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# The project's name, used for the statsd prefix, cache key prefix and log names.
PROJECT_SLUG = env("PROJECT_SLUG", default="keel")

# Core
SECRET_KEY = env("SECRET_KEY", default="")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=[])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])
ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "users.User"
LANGUAGE_CODE = env("LANGUAGE_CODE", default="en-us")
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "csp",
    "axes",
    # Every apps/<name>/ with an apps.py: `make app` adds one, deleting the folder drops it.
    *project_apps.discover(),
]

MIDDLEWARE = [
    # First, so every later log line and every response (errors included) carries the id.
    "apps.core.http.middleware.RequestIdMiddleware",
    # Before everything that can answer early (redirects, 413s), so their time and status count too.
    "apps.core.http.middleware.MetricsMiddleware",
    # After the two above, so a refusal carries an id and is counted; before anything that reads a
    # cookie, the path or a header into a query (sessions, authentication, views).
    "apps.core.http.middleware.ControlCharacterMiddleware",
    # Outside the session middleware, so a session saved to the database counts as a write.
    "apps.core.http.middleware.ReadYourWritesMiddleware",
    # A database outage in a view is a quick 503 with Retry-After, not a 500 (apps/core/http/outages.py).
    "apps.core.http.outages.DatabaseOutageMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "apps.core.http.middleware.BodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes requires: it turns a lockout raised during login into a 429.
    "axes.middleware.AxesMiddleware",
]

# Authentication: django-axes first, so a locked-out client is refused before its password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.core.http.navigation.menu",
            ],
        },
    },
]

# Database: SQLite file when DATABASE_URL is unset, so a first run needs no server.
DATABASE_URL = env("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASE_CONNECT_TIMEOUT = env.int("DATABASE_CONNECT_TIMEOUT", default=5)
DATABASE_STATEMENT_TIMEOUT_MS = env.int("DATABASE_STATEMENT_TIMEOUT_MS", default=30_000)
# Persistent connections and psycopg's pool cannot be combined: with DATABASE_POOL on,
# CONN_MAX_AGE must be 0. The pool opens lazily on the first query, after gunicorn forks,
# because a pool opened before the fork would share sockets between workers.
DATABASE_POOL = env.bool("DATABASE_POOL", default=False)


def database_config(url: str) -> dict[str, Any]:
    """Django's settings for the database at `url`, with the options its engine needs.

    SQLite and MariaDB run the whole suite too; they lack statement_timeout and the pool
    (docs/scale-out.md, "Databases"), which PostgreSQL gets here.
    """
    config: dict[str, Any] = dict(env.db_url_config(url))
    options = config.setdefault("OPTIONS", {})
    if config["ENGINE"] == "django.db.backends.postgresql":
        options["connect_timeout"] = DATABASE_CONNECT_TIMEOUT
        # A runaway query is cancelled by the server instead of holding a worker forever.
        options["options"] = f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT_MS}"
        if DATABASE_POOL:
            options["pool"] = {
                "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
                "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=10),
                "timeout": env.int("DATABASE_POOL_TIMEOUT", default=10),
            }
    elif config["ENGINE"] == "django.db.backends.mysql":
        # utf8mb4: MySQL's "utf8" stores only 3-byte characters and rejects emoji.
        options["charset"] = "utf8mb4"
        # Strict mode: an over-long or invalid value is an error, not silently truncated.
        options["init_command"] = "SET sql_mode='STRICT_TRANS_TABLES'"
        options["connect_timeout"] = DATABASE_CONNECT_TIMEOUT
        # The test database is created by Django, with the server's default charset unless told.
        config["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
    elif config["ENGINE"] == "django.db.backends.sqlite3":
        # Seconds a writer waits for another process's lock before "database is locked".
        options["timeout"] = env.int("DATABASE_SQLITE_TIMEOUT", default=20)
        # Take the write lock at BEGIN: a read lock upgraded mid-transaction cannot wait, only fail.
        options["transaction_mode"] = "IMMEDIATE"
    if DATABASE_POOL:
        config["CONN_MAX_AGE"] = 0
    else:
        config["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
        # A connection that died while idle is replaced before the request uses it.
        config["CONN_HEALTH_CHECKS"] = True
    return config


DATABASES = {"default": database_config(DATABASE_URL)}

# Read replicas: reads go to a replica, writes to the primary, and a client that just wrote
# reads from the primary for a few seconds, so it never sees its own write missing
# (apps/core/data/db_router.py). Empty: every query goes to the primary.
DATABASE_REPLICA_URLS: list[str] = env.list("DATABASE_REPLICA_URLS", default=[])
DATABASE_READ_YOUR_WRITES_SECONDS = env.int("DATABASE_READ_YOUR_WRITES_SECONDS", default=10)
DATABASE_REPLICAS: list[str] = []
for _index, _url in enumerate(DATABASE_REPLICA_URLS):
    DATABASE_REPLICAS.append(f"replica_{_index}")
    # In tests a replica is the primary's test database: Django creates no database for it.
    DATABASES[f"replica_{_index}"] = {**database_config(_url), "TEST": {"MIRROR": "default"}}
DATABASE_ROUTERS = ["apps.core.data.db_router.PrimaryReplicaRouter"]


def redis_url_for_db(url: str, db: int) -> str:
    """Return `url` pointing at Redis database `db`, unless the URL already names one."""
    parts = urlsplit(url)
    if parts.path.strip("/"):
        return url
    return urlunsplit(parts._replace(path=f"/{db}"))


# Redis: one server URL; each role gets its own database number so that the broker's keys
# never share an eviction policy with the cache's (see .env.example). Unset means embedded.
# Each role can move to its own server with its own URL: CACHE_REDIS_URL, SESSION_REDIS_URL,
# AUTOCOMPLETE_REDIS_URL and CELERY_BROKER_URL (docs/scale-out.md, "Redis roles").
REDIS_URL = env("REDIS_URL", default="")
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=0.5)
# With only a Redis broker configured, the cache goes to database 0 of the broker's server: beat's
# heartbeat, the slot locks and the redelivery bound need a cache that every process shares.
_broker_redis = env("CELERY_BROKER_URL", default="")
_broker_redis = _broker_redis if urlsplit(_broker_redis).scheme in ("redis", "rediss") else ""
_cache_server = REDIS_URL or (urlunsplit(urlsplit(_broker_redis)._replace(path="")) if _broker_redis else "")
CACHE_REDIS_URL = env("CACHE_REDIS_URL", default=redis_url_for_db(_cache_server, 0) if _cache_server else "")
# The cache through Redis Sentinel: the sentinels name the current primary, so a failover needs
# no configuration change. Set, these replace CACHE_REDIS_URL.
CACHE_REDIS_SENTINELS: list[str] = env.list("CACHE_REDIS_SENTINELS", default=[])
CACHE_REDIS_SENTINEL_MASTER = env("CACHE_REDIS_SENTINEL_MASTER", default="mymaster")
# Sessions' own Redis; unset, sessions live in the cache.
SESSION_REDIS_URL = env("SESSION_REDIS_URL", default="")
CACHE_KEY_PREFIX = env("CACHE_KEY_PREFIX", default=PROJECT_SLUG)


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
            "LOCATION": env("CACHE_FILE_DIR", default=str(BASE_DIR / "build" / "cache")),
        }
    }
# Log the swallowed Redis errors: an outage must be visible even though requests succeed.
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
DJANGO_REDIS_LOGGER = "apps.core.data.cache"

# Autocomplete index: a Redis sorted set (database 2 by default); unset means database lookups.
AUTOCOMPLETE_REDIS_URL = env(
    "AUTOCOMPLETE_REDIS_URL", default=redis_url_for_db(REDIS_URL, 2) if REDIS_URL else ""
)
AUTOCOMPLETE_KEY_PREFIX = env("AUTOCOMPLETE_KEY_PREFIX", default=PROJECT_SLUG)

# Articles: how long the API's view cache keeps a list page or an article (any change drops them all).
ARTICLES_CACHE_TIMEOUT = env.int("ARTICLES_CACHE_TIMEOUT", default=300)
# The sweep re-queues an author notification still unsent this many seconds after publication.
# Longer than a task's retry window plus the broker's visibility timeout (TASK_RETRY_WINDOW,
# CELERY_VISIBILITY_TIMEOUT), so a notification still retrying, or held by a worker that died,
# is not queued a second time: the sweep re-queues only what was lost.
ARTICLES_NOTIFY_GRACE_SECONDS = env.int("ARTICLES_NOTIFY_GRACE_SECONDS", default=1800)

# The site's public address, for links in emails; by default the address `make run` serves (PORT).
SITE_URL = env("SITE_URL", default=f"http://127.0.0.1:{env.int('PORT', default=8000)}")

# Sessions: read from the cache, written through to the database (a Redis outage loses nothing).
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
if SESSION_REDIS_URL:
    CACHES["sessions"] = redis_cache(SESSION_REDIS_URL)
    SESSION_CACHE_ALIAS = "sessions"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 24 * 14)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# A refused CSRF check answers in the API's error shape on API paths (csrf_failed), Django's page elsewhere.
CSRF_FAILURE_VIEW = "apps.core.http.views.csrf_failure"

# Passwords: Argon2 first; the others stay so that older hashes still verify and get upgraded.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Security headers that hold in every profile; production adds the HTTPS-only ones.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Content-Security-Policy: everything from our own origin; the admin and the Swagger UI
# (served from drf-spectacular-sidecar, its init script split out) need nothing inline for scripts.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        # Swagger UI sets element styles from JavaScript; styles cannot run code.
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Uploads: bodies above this size are refused with 413 before any view parses them.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)

# Admin at a path of the operator's choosing, so scanners do not find it at /admin/.
ADMIN_URL = env("ADMIN_URL", default="admin/").strip("/") + "/"

# Static and media files: collected to STATIC_ROOT and served by nginx in production.
STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "media")))

# Backups (make backup): where pg_dump files go and how many of the newest are kept.
BACKUP_DIR = Path(env("BACKUP_DIR", default=str(BASE_DIR / "backups")))
BACKUP_KEEP = env.int("BACKUP_KEEP", default=7)

# Media on S3-compatible object storage when a bucket is set, so that every app host sees every
# upload; local disk (MEDIA_ROOT) otherwise. Credentials come from boto3's own chain: the
# AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY variables, or the host's instance role.
AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME", default="")
AWS_S3_ENDPOINT_URL = env("AWS_S3_ENDPOINT_URL", default=None)
AWS_S3_REGION_NAME = env("AWS_S3_REGION_NAME", default=None)
AWS_S3_CUSTOM_DOMAIN = env("AWS_S3_CUSTOM_DOMAIN", default=None)
AWS_LOCATION = env("AWS_LOCATION", default="media")
# Private bucket by default: links are signed and expire.
AWS_QUERYSTRING_AUTH = env.bool("AWS_QUERYSTRING_AUTH", default=True)
AWS_QUERYSTRING_EXPIRE = env.int("AWS_QUERYSTRING_EXPIRE", default=3600)
# An upload never replaces another file of the same name; it gets a new name instead.
AWS_S3_FILE_OVERWRITE = False
STORAGES = {
    "default": {
        "BACKEND": "storages.backends.s3.S3Storage"
        if AWS_STORAGE_BUCKET_NAME
        else "django.core.files.storage.FileSystemStorage"
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Email: console in development; SMTP (or any backend) from EMAIL_URL.
EMAIL_URL = env("EMAIL_URL", default="consolemail://")
_email = env.email_url_config(EMAIL_URL)
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
EMAIL_PORT = _email["EMAIL_PORT"] or 25
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default=f"{PROJECT_SLUG}@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Trusted proxies in front of the app (1 behind Keel's nginx). X-Forwarded-For is believed only
# this many hops deep, so a client cannot pick its own address by sending the header.
NUM_PROXIES = env.int("NUM_PROXIES", default=0)

# Brute-force protection (django-axes): failed logins are counted per username and client address
# together, so an attacker cannot lock a victim out from elsewhere, and a lockout ends after the
# cool-off instead of needing an administrator. The counts live in the database: a Redis outage or
# restart neither fails a login with a 500 nor gives an attacker a fresh count.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(seconds=env.int("AXES_COOLOFF_SECONDS", default=15 * 60))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# The keyword every login passes to authenticate() (its default, USERNAME_FIELD, would be "email").
AXES_USERNAME_FORM_FIELD = "username"
# Logins ignore the address's case, so the count must too.
AXES_USERNAME_CALLABLE = "apps.users.services.user_lockout_username"
AXES_CLIENT_IP_CALLABLE = "apps.core.http.client_ip.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_CALLABLE = "apps.core.http.views.locked_out"
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)


def _throttle_rate(name: str, default: str) -> str | None:
    """A DRF rate ("100/minute"), or None for "off": DRF then skips that throttle, cache and all."""
    rate = env(name, default=default).strip()
    return None if rate.lower() in {"off", "none", "0"} else rate


# Django REST framework: versioned under /api/v1/, one error shape, throttled on the cache.
REST_FRAMEWORK = {
    "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.NamespaceVersioning",
    "DEFAULT_VERSION": "v1",
    "ALLOWED_VERSIONS": ["v1"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes unauthenticated requests 401, not 403.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    # DRF's three parsers; the JSON one answers JSON nested too deeply with a 400.
    "DEFAULT_PARSER_CLASSES": [
        "apps.core.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.pagination.PageNumberPaginationWithSize",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", default=20),
    # drf-spectacular's, plus the error responses every operation can give.
    "DEFAULT_SCHEMA_CLASS": "apps.core.api.schema.ErrorResponsesAutoSchema",
    "EXCEPTION_HANDLER": "apps.core.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": _throttle_rate("API_THROTTLE_ANON", "100/minute"),
        "user": _throttle_rate("API_THROTTLE_USER", "1000/minute"),
        "login": _throttle_rate("API_THROTTLE_LOGIN", "10/minute"),
    },
    # Throttles key on the real client address, trusting the same proxy depth as the lockouts.
    "NUM_PROXIES": NUM_PROXIES,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": env("API_TITLE", default=f"{PROJECT_SLUG} API"),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Celery: the broker is its own Redis database, never the cache's. Unset means tasks run eagerly.
# RabbitMQ needs nothing but its URL here (amqp://user:password@host:5672/vhost).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=redis_url_for_db(REDIS_URL, 1) if REDIS_URL else "")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=None)
CELERY_TIMEZONE = TIME_ZONE
# Several sites (or test runs) can share one broker when each consumes its own queue.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="celery")

# Celery reliability: each setting names what breaks without it.
# Without late acks a message is acknowledged when a worker takes it: a worker killed mid-task
# (deploy, OOM, crash) loses the task for good. With them, the broker redelivers it.
CELERY_TASK_ACKS_LATE = env.bool("CELERY_TASK_ACKS_LATE", default=True)
# Without it a task whose pool process died (SIGKILL, OOM killer) is acked as failed, never rerun.
CELERY_TASK_REJECT_ON_WORKER_LOST = env.bool("CELERY_TASK_REJECT_ON_WORKER_LOST", default=True)
# Without it each process reserves 4 messages: with late acks they sit behind a long task
# while other workers idle, and they are all redelivered together when that worker dies.
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=1)
# Without time limits one call to a hung service holds a worker process forever. The soft limit
# raises SoftTimeLimitExceeded inside the task so it can clean up; the hard one kills the process.
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
# A task failing on a transient error (database, Redis, broker, network) is retried for this many
# seconds after its first failure, so an outage of minutes delays it instead of losing it; what
# still fails lands in the dead-letter table (admin: Core > Dead letters).
TASK_RETRY_WINDOW = env.int("TASK_RETRY_WINDOW", default=900)
# Retries wait 1, 2, 4... seconds with full jitter, up to this; the longest countdown Keel's tasks use.
TASK_RETRY_BACKOFF_MAX = env.int("TASK_RETRY_BACKOFF_MAX", default=120)
# Redis broker only: a message not acknowledged within this many seconds is handed to another
# worker, which is how the tasks of a worker whose main process died (kill -9, OOM killer, a lost
# host) run again. A worker holds a retry's message from its arrival, through its countdown, to the
# end of its run: shorter than the longest countdown plus the hard time limit, and a waiting or
# running task runs twice; much longer, and a dead worker's tasks wait that long.
CELERY_VISIBILITY_TIMEOUT = env.int(
    "CELERY_VISIBILITY_TIMEOUT", default=TASK_RETRY_BACKOFF_MAX + CELERY_TASK_TIME_LIMIT + 60
)
if TASK_RETRY_BACKOFF_MAX + CELERY_TASK_TIME_LIMIT >= CELERY_VISIBILITY_TIMEOUT:
    raise ImproperlyConfigured(
        f"CELERY_VISIBILITY_TIMEOUT ({CELERY_VISIBILITY_TIMEOUT}s) must be longer than "
        f"TASK_RETRY_BACKOFF_MAX ({TASK_RETRY_BACKOFF_MAX}s) plus "
        f"CELERY_TASK_TIME_LIMIT ({CELERY_TASK_TIME_LIMIT}s), "
        "or tasks still waiting or running are delivered twice."
    )
# Without socket timeouts a broker that accepts connections but never answers hangs the caller.
# The read timeout must stay above the 1 s a worker's BRPOP waits for a message on Redis.
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=1.0)
CELERY_BROKER_SOCKET_TIMEOUT = env.float("CELERY_BROKER_SOCKET_TIMEOUT", default=2.0)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # kombu looks for expired messages every 10 s but, by default, scans only on every tenth look:
    # a dead worker's tasks would wait up to 100 s more than the visibility timeout.
    "unacked_restore_throttle": 1,
    "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
    "socket_timeout": CELERY_BROKER_SOCKET_TIMEOUT,
}
# No publish retries: each retry reconnects and waits the timeouts again, so with a hung broker
# every retry multiplied a request's wait. A connection the broker closed (a restart) is replaced
# by redis-py when taken from the pool, so no retry is needed for that; a task that still cannot
# be queued is logged by enqueue() and found again by its periodic sweep.
CELERY_TASK_PUBLISH_RETRY = False
# Without it a worker started before the broker (boot order, broker restart) exits at once.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Without it the tasks running when the broker connection drops are redelivered while they still
# run (late acks), and run twice.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# Without these a slow leak in a library grows each pool process until the OOM killer picks one;
# a process is replaced after this many tasks, or after the task that takes it past the ceiling (KiB).
# Positive numbers only: `celery worker` also reads these two variables itself, as the values of
# its --max-tasks-per-child and --max-memory-per-child options, and stops on 0.
CELERY_WORKER_MAX_TASKS_PER_CHILD = env.int("CELERY_WORKER_MAX_TASKS_PER_CHILD", default=1000)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env.int("CELERY_WORKER_MAX_MEMORY_PER_CHILD", default=400_000)
# Soft shutdown: on a cold shutdown (SIGQUIT, or SIGTERM with REMAP_SIGTERM=SIGQUIT) running tasks
# get this many seconds to finish before they are cancelled and requeued; without it a deploy
# cuts them in half.
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = env.float("CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT", default=30.0)
# A task delivered this many times without finishing (it kills its worker) is dropped with an
# error line instead of looping forever; counted per task id and retry in the cache.
TASK_MAX_DELIVERIES = env.int("TASK_MAX_DELIVERIES", default=5)
# Celery's own logging setup would replace ours; workers log like the web (request ids, JSON).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Beat: the schedule lives here, in code, and is synced into django-celery-beat's tables when beat
# starts (added, updated, or disabled when removed), so operators can pause or retime in the admin.
CELERY_BEAT_SCHEDULER = "apps.core.tasks.beat:CodeSyncedDatabaseScheduler"
# Without it django-celery-beat saves last run times every 3 minutes: a beat killed in between sends
# everything it sent since once more when it restarts. 1 saves them right after each send.
CELERY_BEAT_SYNC_EVERY = env.int("CELERY_BEAT_SYNC_EVERY", default=1)
# Longest sleep between beat's ticks; each tick renews the beat lock.
CELERY_BEAT_MAX_LOOP_INTERVAL = env.int("CELERY_BEAT_MAX_LOOP_INTERVAL", default=5)
# Exactly one beat sends: the one holding a lock in the cache's Redis; any other stands by. A beat
# killed without stopping keeps the lock this many seconds, so its replacement sends at most this
# long (plus one tick) after it died. Too short, and a beat stalled by a slow database loses it.
BEAT_LOCK_TIMEOUT = env.int("BEAT_LOCK_TIMEOUT", default=30)
if BEAT_LOCK_TIMEOUT <= 2 * CELERY_BEAT_MAX_LOOP_INTERVAL:
    raise ImproperlyConfigured(
        f"BEAT_LOCK_TIMEOUT ({BEAT_LOCK_TIMEOUT}s) must be more than twice CELERY_BEAT_MAX_LOOP_INTERVAL "
        f"({CELERY_BEAT_MAX_LOOP_INTERVAL}s), or the beat lock expires between two renewals."
    )
# Seconds between beat heartbeats, and the age after which /readyz reports beat as stale.
BEAT_HEARTBEAT_INTERVAL = env.int("BEAT_HEARTBEAT_INTERVAL", default=60)
BEAT_HEARTBEAT_MAX_AGE = env.int("BEAT_HEARTBEAT_MAX_AGE", default=5 * BEAT_HEARTBEAT_INTERVAL)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "core.clear-expired-sessions": {
        "task": "apps.core.tasks.clear_expired_sessions",
        "schedule": crontab(hour=3, minute=17),
    },
    "core.beat-heartbeat": {
        "task": "apps.core.tasks.beat_heartbeat",
        "schedule": float(BEAT_HEARTBEAT_INTERVAL),
        # Heartbeats queued while no worker runs are useless once /readyz would call them stale.
        "options": {"expire_seconds": BEAT_HEARTBEAT_MAX_AGE},
        # A start time in the past makes an entry that never ran due at once (django-celery-beat),
        # so a new beat's first heartbeat goes out as it starts, not an interval later, and /readyz
        # does not call beat stale meanwhile. Later runs keep the interval.
        "start_time": datetime(2000, 1, 1, tzinfo=UTC),
    },
    # Queue depths and beat's lag for statsd; read-only, so two runs in a slot do no harm.
    "core.sample-monitoring-gauges": {
        "task": "apps.core.monitoring_tasks.sample_monitoring_gauges",
        "schedule": 30.0,
        "options": {"expire_seconds": 25},
    },
    # Each app's own entries, from apps/<name>/schedule.py.
    **project_apps.beat_schedules(),
}

# Error tracking: Sentry, on when SENTRY_DSN is set. No personal data is sent unless asked for.
SENTRY_DSN = env("SENTRY_DSN", default="")
# Each event is tagged with the request id (apps/core/observability/sentry.py).
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=env("SENTRY_ENVIRONMENT", default="production"),
        release=env("SENTRY_RELEASE", default=None),
        sample_rate=env.float("SENTRY_SAMPLE_RATE", default=1.0),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
        # Off by default: no user emails, IP addresses, cookies or request bodies leave the site.
        send_default_pii=env.bool("SENTRY_SEND_DEFAULT_PII", default=False),
        integrations=[DjangoIntegration(), CeleryIntegration()],
    )

# Health checks: how long /readyz waits for each dependency before calling it down.
HEALTH_CHECK_TIMEOUT = env.float("HEALTH_CHECK_TIMEOUT", default=1.0)

# Metrics: statsd over UDP, fire and forget; off (no socket at all) while STATSD_HOST is unset.
STATSD_HOST = env("STATSD_HOST", default="")
STATSD_PORT = env.int("STATSD_PORT", default=8125)
STATSD_PREFIX = env("STATSD_PREFIX", default=PROJECT_SLUG)

# Logging: readable lines in development, one JSON object per line in production.
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_FORMAT = env("LOG_FORMAT", default="text")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "apps.core.observability.logging.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "apps.core.observability.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"level": LOG_LEVEL, "propagate": True},
        # Request ids are in our own lines; Django's per-request "Not Found" lines repeat them.
        "django.server": {"level": "WARNING"},
        # django-axes announces its configuration on every start, management commands included.
        "axes.apps": {"level": "WARNING"},
    },
}

HOSTNAME = socket.gethostname()
