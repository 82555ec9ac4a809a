"""Development: DEBUG on, embedded services unless DATABASE_URL / REDIS_URL say otherwise."""

from config.env import env_value

from .base import *  # noqa: F403

DEBUG = env_value("DEBUG", profile="development")
# Only ever used on a developer's machine; production refuses to start without its own.
SECRET_KEY = env_value("SECRET_KEY", profile="development")
ALLOWED_HOSTS = env_value("ALLOWED_HOSTS", profile="development")
INTERNAL_IPS = ["127.0.0.1"]

# A developer's own overrides, ignored by git (see docs/forking.md).
if (BASE_DIR / "config" / "settings" / "local.py").exists():  # noqa: F405
    from .local import *  # noqa: F403
