"""The site menu, gathered from the installed project apps.

An app puts itself in the menu with a `menu = ("Label", "namespace:url-name")` attribute on its
AppConfig, so no shared template names an app that a fork may drop.
"""

from functools import cache

from django.apps import apps
from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse

from config.env import display_name


@cache
def menu_entries() -> tuple[tuple[str, str], ...]:
    entries = []
    for config in apps.get_app_configs():
        menu = getattr(config, "menu", None)
        if menu is not None:
            label, url_name = menu
            entries.append((label, reverse(url_name)))
    return tuple(entries)


def menu(request: HttpRequest) -> dict[str, object]:
    """Template context processor: `menu` is a list of (label, url); `site_name` the project's name."""
    return {"menu": menu_entries(), "site_name": site_name()}


def site_name() -> str:
    return display_name(settings.PROJECT_SLUG)
