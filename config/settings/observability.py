"""Observability: logging, statsd metrics, health checks and Sentry error tracking."""

from __future__ import annotations

from typing import Any

from config.env import env_value

# Logging: readable lines in development, one JSON object per line in production.
LOG_LEVEL = env_value("LOG_LEVEL")
LOG_FORMAT = env_value("LOG_FORMAT")
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

# Metrics: statsd over UDP, fire and forget; off (no socket at all) while STATSD_HOST is unset.
STATSD_HOST = env_value("STATSD_HOST")
STATSD_PORT = env_value("STATSD_PORT")
STATSD_PREFIX = env_value("STATSD_PREFIX")

# Health checks: how long /readyz waits for each dependency before calling it down.
HEALTH_CHECK_TIMEOUT = env_value("HEALTH_CHECK_TIMEOUT")

# Error tracking: Sentry, on when SENTRY_DSN is set. No personal data is sent unless asked for.
SENTRY_DSN = env_value("SENTRY_DSN")
# Each event is tagged with the request id (apps/core/observability/sentry.py).
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=env_value("SENTRY_ENVIRONMENT"),
        release=env_value("SENTRY_RELEASE") or None,
        sample_rate=env_value("SENTRY_SAMPLE_RATE"),
        traces_sample_rate=env_value("SENTRY_TRACES_SAMPLE_RATE"),
        # Off by default: no user emails, IP addresses, cookies or request bodies leave the site.
        send_default_pii=env_value("SENTRY_SEND_DEFAULT_PII"),
        integrations=[DjangoIntegration(), CeleryIntegration()],
    )
