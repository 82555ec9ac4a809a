"""Every environment variable the project reads, declared once, and the one reader of them.

    from config.env import env_value
    DEBUG = env_value("DEBUG", profile="development")

Each variable has one name, one type, one default (per profile where the profiles differ), one
line saying what it does, and the components that read it. The settings, `deploy/gunicorn.conf.py`
and the deploy renderer read through `env_value`; `docs/settings.md` is generated from this table
(`make settings-doc`), and a test checks that `.env.example` and the reference agree with it.

The process environment wins over `.env`, so an operator's export always takes effect. An empty
value counts as unset. Importing this module needs no Django settings: gunicorn's configuration
and the renderer import it before (or without) Django.

An app's own variables live in the app: `apps/<name>/conf.py` declares them in a `VARIABLES`
list and sets its settings from them (config/project_apps.py merges them into the settings).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
ENV_FILE = BASE_DIR / ".env"

# Who reads a variable, as the reference names them.
SETTINGS = "settings"
GUNICORN = "gunicorn"
RENDER = "render"
MAKE = "make"
CELERY = "celery worker"
DJANGO = "createsuperuser"
TESTS = "tests"

# The profiles a default can differ by: Django's settings profiles and the renderer's targets.
PROFILES = ("development", "test", "production", "local", "host")

_TRUE = {"1", "true", "yes", "on", "y", "ok"}
_FALSE = {"0", "false", "no", "off", "n"}


class EnvError(ImproperlyConfigured):
    """A variable has a value its type cannot take; the message names it and says what fits."""


@dataclass(frozen=True)
class Derived:
    """A default computed from other values: `text` says how (for the reference), `compute` does it.

    Without `compute`, the reader returns None when the variable is unset and its caller derives
    the value (the renderer's paths, which depend on the target it renders for).
    """

    text: str
    compute: Callable[[Callable[[str], Any]], Any] | None = None


@dataclass(frozen=True)
class Var:
    name: str
    type: str  # str, bool, int, float, list, path
    default: Any
    doc: str
    read_by: tuple[str, ...] = (SETTINGS,)
    topic: str = "Core"
    # Defaults that differ by profile (development, test, production) or render target (local, host).
    profiles: Mapping[str, Any] = field(default_factory=dict)

    def default_for(self, profile: str | None) -> Any:
        if profile is not None and profile in self.profiles:
            return self.profiles[profile]
        return self.default


def display_name(slug: str) -> str:
    """The project's name as people read it, from PROJECT_SLUG: my-shop -> My Shop."""
    return slug.replace("-", " ").replace("_", " ").title()


def redis_url_for_db(url: str, db: int) -> str:
    """Return `url` pointing at Redis database `db`, unless the URL already names one."""
    parts = urlsplit(url)
    if parts.path.strip("/"):
        return url
    return urlunsplit(parts._replace(path=f"/{db}"))


def _redis_server(url: str) -> str:
    """A redis:// or rediss:// URL without its database number; anything else (amqp://...) gives ""."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="")) if parts.scheme in ("redis", "rediss") else ""


def _cache_redis_url(read: Callable[[str], Any]) -> str:
    # With only a Redis broker configured, the cache goes to database 0 of the broker's server: beat's
    # heartbeat, the slot locks and the redelivery bound need a cache that every process shares.
    server = read("REDIS_URL") or _redis_server(read("CELERY_BROKER_URL"))
    return redis_url_for_db(server, 0) if server else ""


def _site_url(read: Callable[[str], Any]) -> str:
    return f"http://127.0.0.1:{read('PORT')}"


def _visibility_timeout(read: Callable[[str], Any]) -> int:
    return int(read("TASK_RETRY_BACKOFF_MAX")) + int(read("CELERY_TASK_TIME_LIMIT")) + 60


def _slug(read: Callable[[str], Any]) -> str:
    return str(read("PROJECT_SLUG"))


# Keys of concurrent test runs on one Redis must not meet.
TEST_RUN_PREFIX = Derived(
    "PROJECT_SLUG-test-<pid>", lambda read: f"{read('PROJECT_SLUG')}-test-{os.getpid()}"
)


_DAY = 60 * 60 * 24

# Topics, in the order of the reference.
CORE, DATABASE, REDIS, CELERY_TOPIC, SECURITY, API, EMAIL, STORAGE = (
    "Core",
    "Database",
    "Cache and Redis",
    "Celery and beat",
    "Security and sessions",
    "API",
    "Email",
    "Files and storage",
)
OBSERVABILITY, DEPLOY, GUNICORN_TOPIC, NGINX, SUPERVISOR, TOOLS = (
    "Observability",
    "Deploy: rendering",
    "Deploy: gunicorn",
    "Deploy: nginx",
    "Deploy: supervisor",
    "Make and tests",
)


def _topic(topic: str, *variables: Var) -> tuple[Var, ...]:
    return tuple(replace(var, topic=topic) for var in variables)


VARIABLES: tuple[Var, ...] = (
    *_topic(
        CORE,
        Var(
            "DJANGO_SETTINGS_MODULE",
            "str",
            Derived("manage.py and make: config.settings.development; gunicorn, celery, ASGI: .production"),
            "Settings profile: config.settings.development, .test or .production; from the process "
            "environment only (it is chosen before .env is read).",
            read_by=(SETTINGS, MAKE),
        ),
        Var(
            "PROJECT_SLUG",
            "str",
            "keel",
            "The project's name: cache key, statsd prefix, API title, deploy paths.",
            read_by=(SETTINGS, GUNICORN, RENDER),
        ),
        Var(
            "SECRET_KEY",
            "str",
            "",
            "Signing key; production refuses to start without 50+ random characters.",
            profiles={
                "development": "development-only-secret-key-never-use-in-production-0123456789",
                "test": "test-only-secret-key-with-enough-entropy-0123456789abcdef",
            },
        ),
        Var(
            "DEBUG",
            "bool",
            False,
            "Django's debug pages; production refuses to start with it on.",
            profiles={"development": True},
        ),
        Var(
            "ALLOWED_HOSTS",
            "list",
            [],
            "Host names the site answers to (comma-separated); required in production, nginx's server names.",
            read_by=(SETTINGS, RENDER),
            profiles={"development": ["localhost", "127.0.0.1", "[::1]"]},
        ),
        Var("LANGUAGE_CODE", "str", "en-us", "Django's LANGUAGE_CODE."),
        Var("TIME_ZONE", "str", "UTC", "Django's and Celery's time zone."),
        Var(
            "SITE_URL",
            "str",
            Derived("http://127.0.0.1:$PORT, the address of `make run`", _site_url),
            "The site's public address, for links in emails; set it in production.",
        ),
    ),
    *_topic(
        DATABASE,
        Var(
            "DATABASE_URL",
            "str",
            f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
            "The database: postgres://..., mysql://... or sqlite:///path (default: db.sqlite3, no server).",
            profiles={"test": "postgres://postgres@127.0.0.1:5432/app"},
        ),
        Var(
            "DATABASE_CONNECT_TIMEOUT",
            "int",
            5,
            "Seconds to wait for a PostgreSQL or MariaDB connection; the request then gets a 503.",
        ),
        Var(
            "DATABASE_STATEMENT_TIMEOUT_MS",
            "int",
            30_000,
            "PostgreSQL cancels a statement running longer than this (milliseconds); the request gets a 503.",
        ),
        Var(
            "DATABASE_SQLITE_TIMEOUT", "int", 20, "SQLite: seconds a writer waits for another process's lock."
        ),
        Var(
            "CONN_MAX_AGE",
            "int",
            60,
            "Seconds a database connection is reused (0: one per request); off with the pool.",
        ),
        Var(
            "DATABASE_POOL",
            "bool",
            False,
            "psycopg's connection pool instead of persistent connections (PostgreSQL).",
        ),
        Var("DATABASE_POOL_MIN_SIZE", "int", 2, "Connections the pool keeps open."),
        Var("DATABASE_POOL_MAX_SIZE", "int", 10, "Most connections the pool opens."),
        Var("DATABASE_POOL_TIMEOUT", "int", 10, "Seconds a request waits for a free pooled connection."),
        Var(
            "DATABASE_REPLICA_URLS",
            "list",
            [],
            "Read replicas (comma-separated URLs); empty: all on the primary.",
        ),
        Var(
            "DATABASE_READ_YOUR_WRITES_SECONDS",
            "int",
            10,
            "After a write, its client reads from the primary this long, so it sees its own write.",
        ),
    ),
    *_topic(
        REDIS,
        Var(
            "REDIS_URL",
            "str",
            "",
            "One Redis for every role: database 0 cache, 1 broker, 2 autocomplete; unset: no Redis needed.",
            read_by=(SETTINGS, MAKE),
            profiles={"test": "redis://127.0.0.1:6379"},
        ),
        Var("REDIS_SOCKET_TIMEOUT", "float", 0.5, "Seconds before a cache call is given up as a miss."),
        Var(
            "CACHE_REDIS_URL",
            "str",
            Derived(
                "database 0 of REDIS_URL, else of a Redis CELERY_BROKER_URL's server; unset: files",
                _cache_redis_url,
            ),
            "The cache's own Redis; it may evict keys (allkeys-lru).",
        ),
        Var(
            "CACHE_REDIS_SENTINELS",
            "list",
            [],
            "The cache through Redis Sentinel: host:port of each sentinel.",
        ),
        Var(
            "CACHE_REDIS_SENTINEL_MASTER",
            "str",
            "mymaster",
            "The name the sentinels know the cache's primary by.",
        ),
        Var(
            "CACHE_FILE_DIR",
            "path",
            BASE_DIR / "build" / "cache",
            "Without a cache Redis: the folder of the file cache every process of the host shares.",
        ),
        Var(
            "CACHE_KEY_PREFIX",
            "str",
            Derived("PROJECT_SLUG", _slug),
            "Prefix of every cache key, so several sites can share one Redis database.",
            profiles={"test": TEST_RUN_PREFIX},
        ),
        Var("SESSION_REDIS_URL", "str", "", "Sessions' own Redis; unset: sessions live in the cache."),
    ),
    *_topic(
        CELERY_TOPIC,
        Var(
            "CELERY_BROKER_URL",
            "str",
            Derived(
                "database 1 of REDIS_URL; unset: tasks run eagerly",
                lambda read: redis_url_for_db(read("REDIS_URL"), 1) if read("REDIS_URL") else "",
            ),
            "The broker: redis://... (its own server, noeviction) or amqp://... for RabbitMQ.",
            read_by=(SETTINGS, MAKE),
        ),
        Var(
            "CELERY_TASK_ALWAYS_EAGER",
            "bool",
            Derived("on when no broker is configured", lambda read: not read("CELERY_BROKER_URL")),
            "Run tasks in the calling process instead of queuing them.",
            profiles={"test": True},
        ),
        Var("CELERY_RESULT_BACKEND", "str", "", "Where task results go, if anything needs them."),
        Var(
            "CELERY_TASK_DEFAULT_QUEUE",
            "str",
            "celery",
            "The queue of tasks; one per site when sites share a broker.",
        ),
        Var(
            "CELERY_TASK_ACKS_LATE",
            "bool",
            True,
            "Acknowledge a task when it ends, so a killed worker's task reruns.",
        ),
        Var("CELERY_TASK_REJECT_ON_WORKER_LOST", "bool", True, "Requeue a task whose pool process died."),
        Var("CELERY_WORKER_PREFETCH_MULTIPLIER", "int", 1, "Messages each worker process reserves."),
        Var("CELERY_TASK_SOFT_TIME_LIMIT", "int", 240, "Seconds before a task gets SoftTimeLimitExceeded."),
        Var(
            "CELERY_TASK_TIME_LIMIT",
            "int",
            300,
            "Seconds before a task's process is killed.",
            read_by=(SETTINGS, RENDER),
        ),
        Var(
            "TASK_RETRY_WINDOW",
            "int",
            900,
            "Seconds a task failing on a transient error is retried before it becomes a dead letter.",
        ),
        Var("TASK_RETRY_BACKOFF_MAX", "int", 120, "Longest wait between two retries (seconds)."),
        Var(
            "CELERY_VISIBILITY_TIMEOUT",
            "int",
            Derived("TASK_RETRY_BACKOFF_MAX + CELERY_TASK_TIME_LIMIT + 60", _visibility_timeout),
            "Redis broker: seconds before an unacknowledged task goes to another worker.",
        ),
        Var("CELERY_BROKER_CONNECTION_TIMEOUT", "float", 1.0, "Seconds to connect to the broker."),
        Var(
            "CELERY_BROKER_SOCKET_TIMEOUT", "float", 2.0, "Seconds to wait for the broker's answer (above 1)."
        ),
        Var(
            "CELERY_WORKER_MAX_TASKS_PER_CHILD",
            "int",
            1000,
            "A worker process is replaced after this many tasks.",
            read_by=(SETTINGS, CELERY),
        ),
        Var(
            "CELERY_WORKER_MAX_MEMORY_PER_CHILD",
            "int",
            400_000,
            "A worker process is replaced after a task takes it past this much memory (KiB).",
            read_by=(SETTINGS, CELERY),
        ),
        Var(
            "CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT",
            "float",
            30.0,
            "Seconds running tasks get to finish on a cold shutdown before they are requeued.",
            read_by=(SETTINGS, RENDER),
        ),
        Var(
            "TASK_MAX_DELIVERIES", "int", 5, "A task delivered this many times without finishing is dropped."
        ),
        Var("CELERY_BEAT_SYNC_EVERY", "int", 1, "Beat saves last run times after this many sends."),
        Var("CELERY_BEAT_MAX_LOOP_INTERVAL", "int", 5, "Beat's longest sleep between ticks (seconds)."),
        Var(
            "BEAT_LOCK_TIMEOUT",
            "int",
            30,
            "Seconds a killed beat keeps the beat lock; above twice CELERY_BEAT_MAX_LOOP_INTERVAL.",
        ),
        Var("BEAT_HEARTBEAT_INTERVAL", "int", 60, "Seconds between beat heartbeats."),
        Var(
            "BEAT_HEARTBEAT_MAX_AGE",
            "int",
            Derived("5 x BEAT_HEARTBEAT_INTERVAL", lambda read: 5 * int(read("BEAT_HEARTBEAT_INTERVAL"))),
            "Heartbeat age at which /readyz reports beat as stale.",
        ),
    ),
    *_topic(
        SECURITY,
        Var(
            "CSRF_TRUSTED_ORIGINS",
            "list",
            [],
            "Origins allowed to post forms cross-origin (https://example.com).",
        ),
        Var(
            "ADMIN_URL",
            "str",
            "admin/",
            "Path of the admin; pick one scanners will not guess.",
            read_by=(SETTINGS, RENDER),
        ),
        Var("SESSION_COOKIE_AGE", "int", 14 * _DAY, "Session lifetime in seconds."),
        Var(
            "DATA_UPLOAD_MAX_MEMORY_SIZE",
            "int",
            2_621_440,
            "Largest request body in bytes; larger ones get 413.",
        ),
        Var("SECURE_SSL_REDIRECT", "bool", True, "Production: redirect plain HTTP to HTTPS."),
        Var(
            "SECURE_HSTS_SECONDS",
            "int",
            365 * _DAY,
            "Production: HSTS lifetime, sent by Django and nginx.",
            read_by=(SETTINGS, RENDER),
        ),
        Var(
            "SECURE_HSTS_INCLUDE_SUBDOMAINS",
            "bool",
            True,
            "Production: HSTS covers subdomains.",
            read_by=(SETTINGS, RENDER),
        ),
        Var(
            "SECURE_HSTS_PRELOAD",
            "bool",
            True,
            "Production: HSTS asks for browsers' preload lists.",
            read_by=(SETTINGS, RENDER),
        ),
        Var("NUM_PROXIES", "int", 0, "Trusted proxies in front of the app (1 behind the deploy's nginx)."),
        Var("AXES_FAILURE_LIMIT", "int", 5, "Failed logins per username and address before a lockout (429)."),
        Var("AXES_COOLOFF_SECONDS", "int", 15 * 60, "Seconds a lockout lasts."),
        Var("AXES_ENABLED", "bool", True, "Login lockouts on or off."),
    ),
    *_topic(
        API,
        Var("API_PAGE_SIZE", "int", 20, "Items per page of list endpoints."),
        Var("API_THROTTLE_ANON", "str", "100/minute", "Rate for anonymous clients; off turns it off."),
        Var("API_THROTTLE_USER", "str", "1000/minute", "Rate for signed-in users; off turns it off."),
        Var("API_THROTTLE_LOGIN", "str", "10/minute", "Rate of login attempts; off turns it off."),
        Var(
            "API_TITLE",
            "str",
            Derived(
                "the project's name (PROJECT_SLUG in title case) API",
                lambda read: f"{display_name(read('PROJECT_SLUG'))} API",
            ),
            "Title of the API schema and docs.",
        ),
    ),
    *_topic(
        EMAIL,
        Var(
            "EMAIL_URL",
            "str",
            "consolemail://",
            "How mail is sent: consolemail:// prints it, smtp+tls://user:password@host:587 sends it.",
        ),
        Var("EMAIL_TIMEOUT", "int", 10, "Seconds before an SMTP connection is given up."),
        Var(
            "DEFAULT_FROM_EMAIL",
            "str",
            Derived("PROJECT_SLUG@localhost", lambda read: f"{read('PROJECT_SLUG')}@localhost"),
            "Sender of the site's mail.",
        ),
    ),
    *_topic(
        STORAGE,
        Var(
            "STATIC_ROOT",
            "path",
            BASE_DIR / "staticfiles",
            "Where collectstatic puts files for nginx.",
            read_by=(SETTINGS, RENDER),
        ),
        Var(
            "MEDIA_ROOT",
            "path",
            BASE_DIR / "media",
            "Where uploads go (without a bucket).",
            read_by=(SETTINGS, RENDER),
        ),
        Var(
            "AWS_STORAGE_BUCKET_NAME",
            "str",
            "",
            "Uploads on S3-compatible storage; setting it switches it on.",
        ),
        Var("AWS_S3_ENDPOINT_URL", "str", "", "Endpoint of a non-AWS store (MinIO, Ceph...)."),
        Var("AWS_S3_REGION_NAME", "str", "", "The bucket's region."),
        Var("AWS_S3_CUSTOM_DOMAIN", "str", "", "A CDN or public domain in front of the bucket."),
        Var("AWS_LOCATION", "str", "media", "Folder inside the bucket."),
        Var("AWS_QUERYSTRING_AUTH", "bool", True, "Private bucket: links are signed and expire."),
        Var("AWS_QUERYSTRING_EXPIRE", "int", 3600, "Seconds a signed link lasts."),
        Var(
            "AWS_ACCESS_KEY_ID",
            "str",
            "",
            "S3 credentials (boto3 reads it); unset: the host's instance role.",
            read_by=("boto3",),
        ),
        Var(
            "AWS_SECRET_ACCESS_KEY",
            "str",
            "",
            "S3 credentials (boto3 reads it); unset: the host's instance role.",
            read_by=("boto3",),
        ),
        Var("BACKUP_DIR", "path", BASE_DIR / "backups", "Where `make backup` writes pg_dump files."),
        Var("BACKUP_KEEP", "int", 7, "How many of the newest backups are kept."),
    ),
    *_topic(
        OBSERVABILITY,
        Var("LOG_LEVEL", "str", "INFO", "Level of the app's logs."),
        Var(
            "LOG_FORMAT",
            "str",
            "text",
            "text, or json (one object per line).",
            profiles={"production": "json"},
        ),
        Var(
            "HEALTH_CHECK_TIMEOUT",
            "float",
            1.0,
            "Seconds /readyz waits for each dependency.",
            profiles={"test": 5.0},
        ),
        Var(
            "STATSD_HOST",
            "str",
            "",
            "statsd server for the app's and gunicorn's metrics; unset: off.",
            read_by=(SETTINGS, GUNICORN),
        ),
        Var("STATSD_PORT", "int", 8125, "statsd's UDP port.", read_by=(SETTINGS, GUNICORN)),
        Var(
            "STATSD_PREFIX",
            "str",
            Derived("PROJECT_SLUG", _slug),
            "Prefix of every metric name.",
            read_by=(SETTINGS, GUNICORN),
        ),
        Var("SENTRY_DSN", "str", "", "Sentry's DSN; unset: error tracking is off."),
        Var("SENTRY_ENVIRONMENT", "str", "production", "Sentry's environment tag."),
        Var("SENTRY_RELEASE", "str", "", "Sentry's release tag."),
        Var("SENTRY_SAMPLE_RATE", "float", 1.0, "Share of errors sent."),
        Var("SENTRY_TRACES_SAMPLE_RATE", "float", 0.0, "Share of requests traced."),
        Var(
            "SENTRY_SEND_DEFAULT_PII", "bool", False, "Send emails, addresses, cookies and bodies to Sentry."
        ),
    ),
    *_topic(
        DEPLOY,
        Var(
            "DEPLOY_TARGET",
            "str",
            "local",
            "local: every path in the build folder, any user, free ports; host: a production host's paths.",
            read_by=(RENDER,),
        ),
        Var(
            "DEPLOY_BUILD_DIR",
            "path",
            BASE_DIR / "build" / "deploy",
            "Where rendered files go.",
            read_by=(RENDER,),
        ),
        Var("DEPLOY_APP_DIR", "path", BASE_DIR, "The checkout the programs run from.", read_by=(RENDER,)),
        Var(
            "DEPLOY_VENV",
            "path",
            Derived("DEPLOY_APP_DIR/.venv"),
            "The virtualenv the programs run from.",
            read_by=(RENDER,),
        ),
        Var(
            "DEPLOY_USER",
            "str",
            Derived("local: whoever runs supervisord; host: PROJECT_SLUG"),
            "The system user of the programs.",
            read_by=(RENDER,),
        ),
        Var(
            "DEPLOY_PROGRAMS",
            "list",
            ["web", "worker", "beat"],
            "The supervisor programs of this host (beat on exactly one host).",
            read_by=(RENDER,),
        ),
        Var(
            "DEPLOY_RUN_DIR",
            "path",
            Derived("local: DEPLOY_BUILD_DIR/run; host: /run/PROJECT_SLUG"),
            "Sockets and pid files.",
            read_by=(RENDER,),
        ),
        Var(
            "DEPLOY_LOG_DIR",
            "path",
            Derived("local: DEPLOY_BUILD_DIR/log; host: /var/log/PROJECT_SLUG"),
            "The programs' logs.",
            read_by=(RENDER,),
        ),
    ),
    *_topic(
        GUNICORN_TOPIC,
        Var(
            "GUNICORN_BIND",
            "str",
            Derived(
                "unix:/run/PROJECT_SLUG/gunicorn.sock",
                lambda read: f"unix:/run/{read('PROJECT_SLUG')}/gunicorn.sock",
            ),
            "unix:/path or host:port; the renderer puts the socket in DEPLOY_RUN_DIR.",
            read_by=(GUNICORN, RENDER),
        ),
        Var(
            "GUNICORN_UMASK",
            "str",
            "0o007",
            "umask of the socket gunicorn creates: group-writable for nginx.",
            read_by=(GUNICORN,),
        ),
        Var("GUNICORN_WORKER_CLASS", "str", "gthread", "gunicorn's worker class.", read_by=(GUNICORN,)),
        Var("GUNICORN_THREADS", "int", 4, "Threads per worker.", read_by=(GUNICORN,)),
        Var(
            "GUNICORN_WORKERS",
            "int",
            Derived("2 x usable CPUs (affinity, cgroup quota) + 1"),
            "Worker processes.",
            read_by=(GUNICORN,),
        ),
        Var(
            "GUNICORN_TIMEOUT",
            "int",
            30,
            "Seconds a silent worker lives; nginx's proxy timeouts use the same.",
            read_by=(GUNICORN, RENDER),
        ),
        Var(
            "GUNICORN_GRACEFUL_TIMEOUT",
            "int",
            30,
            "Seconds in-flight requests get on stop or reload; supervisor waits 10 s more.",
            read_by=(GUNICORN, RENDER),
        ),
        Var(
            "GUNICORN_KEEPALIVE",
            "int",
            65,
            "Idle keep-alive seconds (2 or more); nginx's upstream idles less.",
            read_by=(GUNICORN, RENDER),
        ),
        Var(
            "GUNICORN_MAX_REQUESTS",
            "int",
            20_000,
            "A worker is recycled after this many requests.",
            read_by=(GUNICORN,),
        ),
        Var(
            "GUNICORN_MAX_REQUESTS_JITTER",
            "int",
            2_000,
            "Up to this many more, so workers recycle apart.",
            read_by=(GUNICORN,),
        ),
        Var(
            "GUNICORN_WORKER_TMP_DIR",
            "str",
            "/dev/shm",  # noqa: S108 (a directory, not a file name)
            "Where worker heartbeat files live (memory, not disk).",
            read_by=(GUNICORN,),
        ),
        Var(
            "GUNICORN_FORWARDED_ALLOW_IPS",
            "str",
            "127.0.0.1,::1",
            "Addresses allowed to set X-Forwarded-*.",
            read_by=(GUNICORN,),
        ),
        Var(
            "GUNICORN_ACCESSLOG",
            "str",
            "-",
            "Access log; - is stdout, written by supervisor.",
            read_by=(GUNICORN,),
        ),
        Var(
            "GUNICORN_ERRORLOG",
            "str",
            "-",
            "Error log; - is stderr, written by supervisor.",
            read_by=(GUNICORN,),
        ),
        Var("GUNICORN_LOG_LEVEL", "str", "info", "gunicorn's log level.", read_by=(GUNICORN,)),
        Var(
            "GUNICORN_PROC_NAME",
            "str",
            Derived("PROJECT_SLUG-web", lambda read: f"{read('PROJECT_SLUG')}-web"),
            "gunicorn's process name.",
            read_by=(GUNICORN,),
        ),
        Var(
            "GUNICORN_CONTROL_SOCKET",
            "str",
            Derived("off; the renderer puts it in DEPLOY_RUN_DIR"),
            "gunicorn's control socket (gunicornc).",
            read_by=(GUNICORN, RENDER),
        ),
        Var(
            "GUNICORN_PIDFILE",
            "str",
            Derived("none; the renderer puts it in DEPLOY_RUN_DIR"),
            "gunicorn's pid file, read by the Munin gunicorn_workers plugin.",
            read_by=(GUNICORN, RENDER),
        ),
    ),
    *_topic(
        NGINX,
        Var(
            "NGINX_LISTEN",
            "list",
            [],
            "Plain-HTTP addresses.",
            read_by=(RENDER,),
            profiles={"local": ["127.0.0.1:8080"], "host": ["80", "[::]:80"]},
        ),
        Var(
            "NGINX_TLS",
            "bool",
            False,
            "An HTTPS server (Mozilla intermediate); plain HTTP then redirects.",
            read_by=(RENDER,),
            profiles={"local": False, "host": True},
        ),
        Var(
            "NGINX_LISTEN_TLS",
            "list",
            [],
            "HTTPS addresses.",
            read_by=(RENDER,),
            profiles={"local": ["127.0.0.1:8443"], "host": ["443", "[::]:443"]},
        ),
        Var("NGINX_TLS_CERT", "str", "", "Certificate chain file; needed with NGINX_TLS.", read_by=(RENDER,)),
        Var("NGINX_TLS_KEY", "str", "", "Private key file; needed with NGINX_TLS.", read_by=(RENDER,)),
        Var(
            "NGINX_TLS_DHPARAM",
            "str",
            "",
            "Diffie-Hellman parameters; without them the DHE suites are unused.",
            read_by=(RENDER,),
        ),
        Var(
            "NGINX_TLS_STAPLING",
            "bool",
            False,
            "OCSP stapling, for CAs that publish OCSP.",
            read_by=(RENDER,),
        ),
        Var(
            "NGINX_RESOLVER",
            "str",
            "127.0.0.53",
            "The DNS resolver nginx asks (stapling).",
            read_by=(RENDER,),
        ),
        Var(
            "NGINX_SERVER_NAMES",
            "list",
            Derived("ALLOWED_HOSTS, else localhost 127.0.0.1"),
            "Host names nginx answers; other Host headers are dropped.",
            read_by=(RENDER,),
        ),
        Var(
            "NGINX_UPSTREAM_SERVERS",
            "list",
            Derived("GUNICORN_BIND"),
            "The gunicorn servers; more to scale out.",
            read_by=(RENDER,),
        ),
        Var(
            "NGINX_UPSTREAM_MAX_FAILS",
            "int",
            3,
            "Failed attempts before an upstream is skipped.",
            read_by=(RENDER,),
        ),
        Var(
            "NGINX_UPSTREAM_FAIL_TIMEOUT",
            "int",
            10,
            "Seconds a failed upstream is skipped.",
            read_by=(RENDER,),
        ),
        Var(
            "NGINX_CLIENT_MAX_BODY_SIZE",
            "str",
            "10m",
            "Largest request body; larger ones get 413 from nginx.",
            read_by=(RENDER,),
        ),
        Var(
            "NGINX_LIMIT_REQ",
            "bool",
            True,
            "Per-address request rate limits (429 beyond them).",
            read_by=(RENDER,),
        ),
        Var(
            "NGINX_LIMIT_LOGIN_RATE", "str", "10r/m", "Rate of login requests per address.", read_by=(RENDER,)
        ),
        Var(
            "NGINX_LIMIT_LOGIN_BURST",
            "int",
            5,
            "Burst of login requests allowed above the rate.",
            read_by=(RENDER,),
        ),
        Var("NGINX_LIMIT_API_RATE", "str", "20r/s", "Rate of API requests per address.", read_by=(RENDER,)),
        Var(
            "NGINX_LIMIT_API_BURST",
            "int",
            40,
            "Burst of API requests allowed above the rate.",
            read_by=(RENDER,),
        ),
        Var("NGINX_MICROCACHE", "bool", True, "Micro-cache of anonymous API GETs.", read_by=(RENDER,)),
        Var(
            "NGINX_MICROCACHE_TTL",
            "str",
            "1s",
            "How long the micro-cache keeps an answer.",
            read_by=(RENDER,),
        ),
        Var(
            "NGINX_CACHE_DIR",
            "path",
            Derived("local: DEPLOY_RUN_DIR/nginx/cache; host: /var/cache/nginx/PROJECT_SLUG"),
            "Where the micro-cache keeps its entries.",
            read_by=(RENDER,),
        ),
        Var(
            "NGINX_LOG_DIR",
            "path",
            Derived("local: DEPLOY_LOG_DIR; host: /var/log/nginx"),
            "nginx's access and error logs.",
            read_by=(RENDER,),
        ),
        Var(
            "NGINX_ACME_ROOT",
            "path",
            Derived("local: DEPLOY_BUILD_DIR/acme; host: /var/www/acme"),
            "Webroot of certbot's HTTP challenges.",
            read_by=(RENDER,),
        ),
        Var(
            "NGINX_BIN",
            "str",
            Derived("nginx on PATH, else /usr/sbin/nginx"),
            "The nginx binary.",
            read_by=(RENDER,),
        ),
        Var(
            "NGINX_WORKER_PROCESSES",
            "str",
            "auto",
            "The local stack's nginx worker processes.",
            read_by=(RENDER,),
        ),
        Var(
            "NGINX_MIME_TYPES",
            "str",
            "/etc/nginx/mime.types",
            "The local stack's mime.types.",
            read_by=(RENDER,),
        ),
        Var(
            "NGINX_USER",
            "str",
            Derived("root when the local stack starts as root, else unset"),
            "User of the local stack's nginx workers.",
            read_by=(RENDER,),
        ),
    ),
    *_topic(
        SUPERVISOR,
        Var(
            "CELERY_WORKER_CONCURRENCY",
            "int",
            Derived("Celery's: one process per CPU"),
            "Worker pool processes.",
            read_by=(RENDER,),
        ),
        Var(
            "CELERY_WORKER_STOP_TIMEOUT",
            "int",
            330,
            "Seconds supervisor waits for the worker's warm shutdown; above CELERY_TASK_TIME_LIMIT.",
            read_by=(RENDER,),
        ),
    ),
    *_topic(
        TOOLS,
        Var("PORT", "int", 8000, "Port of `make run`.", read_by=(MAKE, SETTINGS)),
        Var(
            "CELERY_LOGLEVEL",
            "str",
            "INFO",
            "Log level of the worker and beat that make starts.",
            read_by=(MAKE,),
        ),
        Var(
            "DJANGO_SUPERUSER_EMAIL",
            "str",
            "",
            "`make superuser` without a terminal: the admin's email.",
            read_by=(DJANGO,),
        ),
        Var(
            "DJANGO_SUPERUSER_PASSWORD",
            "str",
            "",
            "`make superuser` without a terminal: the admin's password.",
            read_by=(DJANGO,),
        ),
        Var(
            "TEST_RABBITMQ_URL",
            "str",
            "amqp://guest:guest@127.0.0.1:5672//",
            "The RabbitMQ that the suite runs one worker against.",
            read_by=(TESTS,),
        ),
    ),
)


@cache
def variables() -> dict[str, Var]:
    """The core variables and every project app's (`apps/<name>/conf.py`), by name."""
    from config import project_apps

    table: dict[str, Var] = {}
    for var in (*VARIABLES, *project_apps.app_variables()):
        if var.name in table:
            raise ValueError(f"{var.name} is declared twice")
        table[var.name] = var
    return table


@cache
def dotenv(path: Path) -> dict[str, str]:
    """The KEY=value lines of `.env`, parsed by django-environ as the settings always have."""

    class _File(environ.Env):
        ENVIRON: dict[str, str] = {}  # django-environ's read_env fills this class attribute

    if path.is_file():
        _File.read_env(path)
    return dict(_File.ENVIRON)


def environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment over `.env` (or `environ` alone when given): what the reader reads."""
    if environ is not None:
        return dict(environ)
    return {**dotenv(ENV_FILE), **os.environ}


def export_dotenv() -> None:
    """Put `.env`'s values into the process environment where unset, for the programs the project starts."""
    for key, value in dotenv(ENV_FILE).items():
        os.environ.setdefault(key, value)


def parse(var: Var, raw: str) -> Any:
    """`raw` as `var`'s type; EnvError naming the variable when it does not fit."""
    value = raw.strip()
    if var.type == "str":
        return value
    if var.type == "bool":
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise EnvError(f"{var.name}={raw!r} is not a boolean; use true/false, on/off or 1/0.")
    if var.type == "int":
        try:
            return int(value)
        except ValueError:
            raise EnvError(f"{var.name}={raw!r} is not a whole number.") from None
    if var.type == "float":
        try:
            return float(value)
        except ValueError:
            raise EnvError(f"{var.name}={raw!r} is not a number.") from None
    if var.type == "list":
        return [word for word in re.split(r"[\s,]+", value) if word]
    if var.type == "path":
        return Path(value).expanduser()
    raise ValueError(f"{var.name}: unknown type {var.type}")


def env_value(name: str, *, profile: str | None = None, environ: Mapping[str, str] | None = None) -> Any:
    """The value of `name`: from the environment (process over `.env`, or `environ` when given),
    else its default for `profile`. A Derived default without `compute` gives None."""
    var = variables().get(name)
    if var is None:
        raise KeyError(f"{name} is not declared in config/env.py (or an app's conf.py)")
    if profile is not None and profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose from {', '.join(PROFILES)}")
    raw = (_current() if environ is None else environ).get(name, "")
    if raw.strip():
        return parse(var, raw)
    default = var.default_for(profile)
    if isinstance(default, Derived):
        if default.compute is None:
            return None
        return default.compute(lambda other: env_value(other, profile=profile, environ=environ))
    return list(default) if isinstance(default, list) else default


def env_is_set(name: str, *, environ: Mapping[str, str] | None = None) -> bool:
    """Whether `name` has a non-empty value in the environment (process over `.env`, or `environ`)."""
    if name not in variables():
        raise KeyError(f"{name} is not declared in config/env.py (or an app's conf.py)")
    return bool((_current() if environ is None else environ).get(name, "").strip())


def _current() -> Mapping[str, str]:
    return {**dotenv(ENV_FILE), **os.environ}


def describe_default(var: Var, profile: str | None = None) -> str:
    """A default as the reference shows it: paths relative to the checkout, lists comma-separated."""
    default = var.default_for(profile)
    if isinstance(default, Derived):
        return default.text
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, Path):
        try:
            return str(default.relative_to(BASE_DIR)) if default != BASE_DIR else "the checkout"
        except ValueError:
            return str(default)
    if isinstance(default, list):
        return ",".join(default) if default else "(empty)"
    if isinstance(default, str) and default.startswith("sqlite:///") and str(BASE_DIR) in default:
        return "sqlite:///" + default.removeprefix(f"sqlite:///{BASE_DIR}/")
    if default == "":
        return "(empty)"
    return str(default)


def reference() -> str:
    """docs/settings.md: every variable by topic, as this table and the apps' declare them."""
    lines = [
        "# Settings reference",
        "",
        "<!-- Generated from config/env.py and apps/*/conf.py by `make settings-doc`; `make lint` fails when",
        "     this file is out of date. Edit the declarations, not this file. -->",
        "",
        "Every variable the project reads, with its type, its default and what reads it. Values come",
        "from the process environment, then `.env` (the environment wins); an empty value counts as unset.",
        "Where a default differs by settings profile (development, test, production) or by render",
        "target (local, host), each is given. `.env.example` lists the ones a deployer usually sets.",
        "`python -m config.env NAME` prints a value as the project reads it here.",
        "",
    ]
    by_topic: dict[str, list[Var]] = {}
    for var in variables().values():
        by_topic.setdefault(var.topic, []).append(var)
    lines += [f"- [{topic}](#{_anchor(topic)})" for topic in by_topic]
    for topic, group in by_topic.items():
        lines += [
            "",
            f"## {topic}",
            "",
            "| Variable | Type | Default | What it does | Read by |",
            "|---|---|---|---|---|",
        ]
        for var in group:
            # A default for every render target leaves none to fall back on.
            shown = [] if {"local", "host"} <= set(var.profiles) else [None]
            defaults = [_default_cell(var, profile) for profile in [*shown, *var.profiles]]
            cells = [f"`{var.name}`", var.type, "<br>".join(defaults), _cell(var.doc), ", ".join(var.read_by)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;")


def _default_cell(var: Var, profile: str | None) -> str:
    """A literal default as code, a derived one as prose; prefixed with its profile if any."""
    text = describe_default(var, profile)
    if not isinstance(var.default_for(profile), Derived) and text != "(empty)":
        text = f"`{text}`"
    return f"{profile}: {_cell(text)}" if profile else _cell(text)


def _anchor(topic: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", topic.lower()).replace(" ", "-")


def main(argv: Iterable[str] | None = None) -> int:
    """`python -m config.env NAME...` prints each value as the reader (and so the settings) see it;
    `--reference` prints docs/settings.md."""
    names = list(sys.argv[1:] if argv is None else argv)
    if names == ["--reference"]:
        sys.stdout.write(reference())
        return 0
    if not names:
        print("usage: python -m config.env NAME [NAME...] | --reference", file=sys.stderr)
        return 2
    try:
        for name in names:
            value = env_value(name)
            print(",".join(value) if isinstance(value, list) else "" if value is None else value)
    except (KeyError, EnvError) as error:
        print(f"config.env: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    # Run as a script this file is `__main__`; the apps' declarations use `config.env`, so read
    # through that one module, not a second copy of it.
    from config.env import main as _main

    sys.exit(_main())
