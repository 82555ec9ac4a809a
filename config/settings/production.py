"""Production: refuses to start with an insecure value; HTTPS-only cookies and headers."""

from config.env import env_value

from .base import *  # noqa: F403
from .base import ALLOWED_HOSTS, DEBUG, SECRET_KEY
from .safety import InsecureSettingError, secret_key_weakness

if DEBUG:
    raise InsecureSettingError("DEBUG must be off in production; unset DEBUG or set DEBUG=false.")
_weakness = secret_key_weakness(SECRET_KEY)
if _weakness:
    raise InsecureSettingError(f"SECRET_KEY {_weakness}.")
if not ALLOWED_HOSTS:
    raise InsecureSettingError("ALLOWED_HOSTS is empty; set it to the site's host names, comma-separated.")

# HTTPS: nginx terminates TLS and says so in X-Forwarded-Proto (only nginx may set it).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_value("SECURE_SSL_REDIRECT")
# The load balancer's readiness probe comes over plain HTTP and must not be redirected (liveness,
# /healthz, is answered before Django: apps/core/http/liveness.py).
SECURE_REDIRECT_EXEMPT = [r"^readyz$"]
SECURE_HSTS_SECONDS = env_value("SECURE_HSTS_SECONDS")
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_value("SECURE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = env_value("SECURE_HSTS_PRELOAD")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
# The __Host- prefix: a browser keeps such a cookie only if it is Secure, with Path=/ and no
# Domain, so neither a sibling subdomain nor a plain-HTTP page can plant or overwrite the session
# or the CSRF token (session fixation, CSRF token injection). A fork that renames them logs
# everyone out once.
SESSION_COOKIE_NAME = "__Host-sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken"

LOG_FORMAT = env_value("LOG_FORMAT", profile="production")
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT  # noqa: F405

# Static files get content hashes in their names so nginx can cache them for a year.
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}  # noqa: F405
