"""Development: DEBUG on, embedded services unless DATABASE_URL / REDIS_URL say otherwise."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
# Only ever used on a developer's machine; production refuses to start without its own.
SECRET_KEY = env("SECRET_KEY", default="development-only-secret-key-never-use-in-production-0123456789")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
INTERNAL_IPS = ["127.0.0.1"]

# A developer's own overrides, ignored by git (see README "Forking and extending").
if (BASE_DIR / "config" / "settings" / "local.py").exists():  # noqa: F405
    from .local import *  # noqa: F403
