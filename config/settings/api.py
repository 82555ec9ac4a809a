"""API: Django REST framework (versioned under /api/v1/, one error shape, throttled on the cache)
and its schema (drf-spectacular)."""

from __future__ import annotations

from config.env import env_value

from .security import NUM_PROXIES


def _throttle_rate(name: str) -> str | None:
    """A DRF rate ("100/minute"), or None for "off": DRF then skips that throttle, cache and all."""
    rate = env_value(name)
    return None if rate.lower() in {"off", "none", "0"} else rate


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
    "PAGE_SIZE": env_value("API_PAGE_SIZE"),
    # drf-spectacular's, plus the error responses every operation can give.
    "DEFAULT_SCHEMA_CLASS": "apps.core.api.schema.ErrorResponsesAutoSchema",
    "EXCEPTION_HANDLER": "apps.core.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": _throttle_rate("API_THROTTLE_ANON"),
        "user": _throttle_rate("API_THROTTLE_USER"),
        "login": _throttle_rate("API_THROTTLE_LOGIN"),
    },
    # Throttles key on the real client address, trusting the same proxy depth as the lockouts.
    "NUM_PROXIES": NUM_PROXIES,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": env_value("API_TITLE"),
    "VERSION": "1.0.0",
    "DESCRIPTION": (
        'Every error has one shape: `{"error": {"code": ..., "message": ..., "fields": ...}, '
        '"request_id": ...}`, where `fields` comes only with a validation error and `request_id` '
        "matches the server's log lines. Sign in with a session (send its CSRF token on writes) or send "
        "`Authorization: Token <key>` from `POST /api/v1/auth/token/`."
    ),
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}
