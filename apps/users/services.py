"""Writes on users: the functions views, admin and commands call."""

from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest
from rest_framework.authtoken.models import Token

from apps.users.models import User


def user_authenticate(*, request: HttpRequest, email: str, password: str) -> User | None:
    # `username` is what authenticate() maps to USERNAME_FIELD, and what django-axes counts by.
    user = authenticate(request, username=email, password=password)
    return user if isinstance(user, User) else None


def user_lockout_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """The address django-axes counts failed logins by (AXES_USERNAME_CALLABLE), normalised as the
    login normalises it: otherwise each way of capitalising one address would get its own limit."""
    source = credentials if credentials is not None else getattr(request, "data", request.POST)
    return User.objects.normalize_email(source.get(settings.AXES_USERNAME_FORM_FIELD))


def user_session_login(*, request: HttpRequest, user: User) -> None:
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")


def user_session_logout(*, request: HttpRequest) -> None:
    logout(request)


def user_token_issue(*, user: User) -> str:
    """Return the user's API token, creating it on first use."""
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def user_token_revoke(*, user: User) -> None:
    Token.objects.filter(user=user).delete()
