"""Test: the real PostgreSQL and Redis on 127.0.0.1 unless the environment points elsewhere."""

import os
from pathlib import Path

# Tests run against real services by design; these defaults apply only when unset.
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/keel")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379")

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = env("SECRET_KEY", default="test-only-secret-key-with-enough-entropy-0123456789abcdef")
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]

# SQLite tests use a file, not Django's in-memory default, so a worker or server process
# started by a test sees the same test database.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    _sqlite_name = Path(DATABASES["default"]["NAME"])  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(_sqlite_name.with_name(f"test_{_sqlite_name.name}"))}  # noqa: F405

# Hashing with Argon2 on every factory-built user would dominate the suite's runtime.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Keys of concurrent test runs on one Redis must not meet.
for _cache in CACHES.values():  # noqa: F405
    _cache["KEY_PREFIX"] = env("CACHE_KEY_PREFIX", default=f"{PROJECT_SLUG}-test-{os.getpid()}")  # noqa: F405
AUTOCOMPLETE_KEY_PREFIX = env("AUTOCOMPLETE_KEY_PREFIX", default=f"{PROJECT_SLUG}-test-{os.getpid()}")  # noqa: F405
# Unit tests run tasks in-process; the integration tests start a real worker with their own settings.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
# A busy test machine can take more than a second to open a database connection; the tests of the
# readiness deadline set their own.
HEALTH_CHECK_TIMEOUT = env.float("HEALTH_CHECK_TIMEOUT", default=5.0)
