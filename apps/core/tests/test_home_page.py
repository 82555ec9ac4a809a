"""The home page: the stack's live status in development and for staff, a welcome for everyone else."""

import logging
import re

import pytest
from django.templatetags.static import static
from django.test import RequestFactory
from django.urls import reverse
from django.views import defaults

from apps.core.http.views import locked_out
from apps.users.tests.factories import UserFactory
from tests.support.redis_servers import redis_server

pytestmark = pytest.mark.django_db

BATTERIES = ["database", "cache", "broker", "workers", "beat", "broker durability", "front"]


def _batteries(content: str) -> dict[str, str]:
    """Each battery on the page, with the state its card shows."""
    cards = re.findall(r'<li class="battery (\w+)" data-battery="([^"]+)"', content)
    return {name: state for state, name in cards}


def test_a_visitor_in_production_sees_the_welcome_and_no_status(client, settings):
    settings.PROJECT_SLUG = "corner_shop"
    response = client.get(reverse("home"))
    content = response.content.decode()
    assert response.status_code == 200
    assert _batteries(content) == {}
    assert "Welcome to Corner Shop" in content
    assert "no-store" not in response.get("Cache-Control", "")


def test_staff_in_production_see_every_battery_and_the_page_is_never_cached(client):
    client.force_login(UserFactory(is_staff=True))
    response = client.get(reverse("home"))
    batteries = _batteries(response.content.decode())
    assert list(batteries) == BATTERIES
    # The suite's real PostgreSQL (or SQLite, MariaDB) and Redis answer; tasks run eagerly here.
    assert batteries["database"] == "ok"
    assert batteries["cache"] == "ok"
    assert batteries["workers"] == batteries["broker"] == batteries["beat"] == "off"
    assert "no-store" in response["Cache-Control"]


def test_in_development_anyone_sees_the_status(client, settings):
    settings.DEBUG = True
    response = client.get(reverse("home"))
    assert list(_batteries(response.content.decode())) == BATTERIES


def test_the_status_names_the_database_engine_and_the_versions(client, settings):
    from django.db import connection

    settings.DEBUG = True
    content = client.get(reverse("home")).content.decode()
    assert f"<dd>{connection.display_name}</dd>" in content
    assert "<dt>django</dt>" in content


def test_a_missing_page_is_the_site_styled_404(client):
    response = client.get("/no/such/page/")
    content = response.content.decode()
    assert response.status_code == 404
    assert "<h1>Page not found</h1>" in content
    assert "core/site.css" in content


def test_a_browser_locked_out_of_its_login_gets_the_styled_429_with_retry_after(settings):
    request = RequestFactory().post("/accounts/login/")
    request.user = UserFactory.build()
    response = locked_out(request)
    assert response.status_code == 429
    assert "<h1>Too many attempts</h1>" in response.content.decode()
    assert int(response["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())


def test_a_server_error_page_is_styled_and_needs_no_context():
    response = defaults.server_error(RequestFactory().get("/"))
    content = response.content.decode()
    assert response.status_code == 500
    assert "<h1>Something went wrong</h1>" in content
    assert "<style>" in content


def test_an_advisory_check_that_fails_is_a_warning_and_a_required_one_is_down(client, settings, monkeypatch):
    from apps.core.http import health

    def failing() -> str:
        raise RuntimeError("refused")

    monkeypatch.setitem(health.CHECKS, "beat", failing)
    monkeypatch.setitem(health.CHECKS, "cache", failing)
    settings.DEBUG = True
    batteries = _batteries(client.get(reverse("home")).content.decode())
    assert batteries["beat"] == "warn"
    assert batteries["cache"] == "down"


def test_a_page_asked_with_an_unreadable_session_cookie_is_the_400_page_not_a_500(client, settings):
    client.cookies[settings.SESSION_COOKIE_NAME] = "abc\x00def"
    for path in (reverse("home"), "/no/such/page/"):
        response = client.get(path)
        assert response.status_code == 400
        assert "<h1>Bad request</h1>" in response.content.decode()


def test_a_browser_asking_for_favicon_ico_is_sent_to_the_icon_and_nothing_is_logged(client, caplog):
    # Pages that name no icon (JSON, the browsable API, the API docs) make browsers ask for it.
    with caplog.at_level(logging.WARNING):
        response = client.get("/favicon.ico")
        head = client.head("/favicon.ico")
    assert response.status_code == head.status_code == 302
    assert response["Location"] == static("core/favicon.svg")
    assert "max-age" in response["Cache-Control"]
    assert [record.getMessage() for record in caplog.records] == []


@pytest.mark.integration
def test_ready_with_an_advisory_check_failing_says_degraded_as_readyz_does(client, settings):
    # A broker that persists nothing, and no beat: both advisory, so ready, but /readyz says degraded.
    with redis_server() as broker:
        settings.CELERY_TASK_ALWAYS_EAGER = False
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{broker.port}/1"
        client.force_login(UserFactory(is_staff=True))
        banner = re.search(
            r'<p class="status-banner".*?</p>', client.get(reverse("home")).content.decode(), re.S
        )
        readyz = client.get(reverse("readyz")).json()
    assert readyz["status"] == "degraded"
    assert banner is not None
    text = " ".join(re.sub(r"<[^>]+>", "", banner.group()).split())
    assert text.startswith("Ready")
    assert "/readyz reports degraded: beat, broker durability" in text
