"""Security: sessions and cookies, passwords, headers, uploads, proxies and login lockouts.

Production adds the HTTPS-only settings (config/settings/production.py).
"""

from __future__ import annotations

from datetime import timedelta

from config.env import env_value

CSRF_TRUSTED_ORIGINS: list[str] = env_value("CSRF_TRUSTED_ORIGINS")

SESSION_COOKIE_AGE = env_value("SESSION_COOKIE_AGE")
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
DATA_UPLOAD_MAX_MEMORY_SIZE = env_value("DATA_UPLOAD_MAX_MEMORY_SIZE")

# Admin at a path of the operator's choosing, so scanners do not find it at /admin/.
ADMIN_URL = env_value("ADMIN_URL").strip("/") + "/"

# Trusted proxies in front of the app (1 behind the deploy's nginx). X-Forwarded-For is believed only
# this many hops deep, so a client cannot pick its own address by sending the header.
NUM_PROXIES = env_value("NUM_PROXIES")

# Authentication: django-axes first, so a locked-out client is refused before its password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Brute-force protection (django-axes): failed logins are counted per username and client address
# together, so an attacker cannot lock a victim out from elsewhere, and a lockout ends after the
# cool-off instead of needing an administrator. The counts live in the database: a Redis outage or
# restart neither fails a login with a 500 nor gives an attacker a fresh count.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = env_value("AXES_FAILURE_LIMIT")
AXES_COOLOFF_TIME = timedelta(seconds=env_value("AXES_COOLOFF_SECONDS"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# The keyword every login passes to authenticate() (its default, USERNAME_FIELD, would be "email").
AXES_USERNAME_FORM_FIELD = "username"
# Logins ignore the address's case, so the count must too.
AXES_USERNAME_CALLABLE = "apps.users.services.user_lockout_username"
AXES_CLIENT_IP_CALLABLE = "apps.core.http.client_ip.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_CALLABLE = "apps.core.http.views.locked_out"
AXES_ENABLED = env_value("AXES_ENABLED")
