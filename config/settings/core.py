"""Core: the project's name, hosts, apps, middleware, templates, language and time."""

from __future__ import annotations

import socket

from config import project_apps
from config.env import BASE_DIR, env_value

# The project's name, used for the statsd prefix, cache key prefix and log names.
PROJECT_SLUG = env_value("PROJECT_SLUG")

SECRET_KEY = env_value("SECRET_KEY")
DEBUG = env_value("DEBUG")
ALLOWED_HOSTS: list[str] = env_value("ALLOWED_HOSTS")
ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "users.User"
LANGUAGE_CODE = env_value("LANGUAGE_CODE")
TIME_ZONE = env_value("TIME_ZONE")
USE_I18N = True
USE_TZ = True

# The site's public address, for links in emails; by default the address `make run` serves (PORT).
SITE_URL = env_value("SITE_URL")

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

HOSTNAME = socket.gethostname()
