"""Test: the real PostgreSQL and Redis on 127.0.0.1 unless the environment points elsewhere."""

import os
from pathlib import Path

from config.env import env_value, variables

# Tests run against real services by design: unless the process environment names others (`.env`
# does not count, as a developer's own database must not be a test's), the test profile's.
for _name in ("DATABASE_URL", "REDIS_URL"):
    os.environ.setdefault(_name, variables()[_name].default_for("test"))

from .base import *  # noqa: E402, F403

DEBUG = False
SECRET_KEY = env_value("SECRET_KEY", profile="test")
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
    _cache["KEY_PREFIX"] = env_value("CACHE_KEY_PREFIX", profile="test")
AUTOCOMPLETE_KEY_PREFIX = env_value("AUTOCOMPLETE_KEY_PREFIX", profile="test")
# Unit tests run tasks in-process; the integration tests start a real worker with their own settings.
CELERY_TASK_ALWAYS_EAGER = env_value("CELERY_TASK_ALWAYS_EAGER", profile="test")
# A busy test machine can take more than a second to open a database connection; the tests of the
# readiness deadline set their own.
HEALTH_CHECK_TIMEOUT = env_value("HEALTH_CHECK_TIMEOUT", profile="test")
