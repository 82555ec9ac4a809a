"""Checks that stop production from starting with an insecure setting."""

from django.core.exceptions import ImproperlyConfigured

# Same thresholds as Django's own security.W009 check.
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE_CHARACTERS = 5


class InsecureSettingError(ImproperlyConfigured):
    """Raised at import of the production settings; manage.py prints it as one line."""


def secret_key_weakness(secret_key: str) -> str:
    """Return why `secret_key` is unfit for production, or an empty string if it is fit."""
    if not secret_key:
        return "is not set; generate one with: python -c 'import secrets; print(secrets.token_urlsafe(64))'"
    if secret_key.startswith("django-insecure-"):
        return "is Django's insecure placeholder; generate a new one"
    if len(secret_key) < SECRET_KEY_MIN_LENGTH or len(set(secret_key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        return f"is weak; use at least {SECRET_KEY_MIN_LENGTH} random characters"
    return ""
