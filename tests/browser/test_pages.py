"""The site's pages in a real browser: what a new user sees first, held to the CSP and to axe-core."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from apps.users.tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.support.browser import accessibility_violations, screenshot, sign_in_to_admin
from tests.support.processes import celery, celery_env, publishing_to
from tests.support.redis_servers import redis_server
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BATTERIES = ["database", "cache", "broker", "workers", "beat", "broker durability", "front"]


def test_the_status_page_shows_every_battery_to_staff(staff: Page):
    staff.goto("/")
    expect(staff.get_by_role("heading", level=1)).to_have_text("Stack status")
    for name in BATTERIES:
        expect(staff.locator(f'[data-battery="{name}"]')).to_be_visible()
    # The suite's real database and Redis answer, with their timings.
    expect(staff.locator('[data-battery="database"] .state')).to_have_text("answers")
    expect(staff.locator('[data-battery="cache"] .state')).to_have_text("answers")
    expect(staff.locator('[data-battery="database"]')).to_contain_text(" ms")
    assert accessibility_violations(staff) == []
    screenshot(staff, "home-status")


@pytest.fixture
def private_redis() -> Iterator[int]:
    """A Redis of this test's own, kept like a broker should be (appendonly), so durability passes."""
    with redis_server("--appendonly", "yes") as server:
        yield server.port


def test_with_a_worker_and_beat_running_every_battery_answers(staff: Page, settings, private_redis, tmp_path):
    from django.db import connection

    from apps.core.tasks.periodic import beat_heartbeat_age

    env = celery_env(database=dict(connection.settings_dict), redis_port=private_redis)
    # Celery's app reads Django's settings live: publishing_to must save the suite's own values
    # (eager tasks) before they change here, or it would restore the changed ones.
    with publishing_to(env["CELERY_BROKER_URL"]):
        # The web process shares the worker's and beat's broker and cache, where beat's heartbeat lands.
        settings.CELERY_BROKER_URL = env["CELERY_BROKER_URL"]
        settings.CELERY_TASK_ALWAYS_EAGER = False
        settings.CACHES = {
            "default": {
                **settings.CACHES["default"],
                "LOCATION": f"redis://127.0.0.1:{private_redis}/0",
                "KEY_PREFIX": env["CACHE_KEY_PREFIX"],
            }
        }
        with celery("worker", env, tmp_path, "--concurrency=1"), celery("beat", env, tmp_path):
            wait_until(lambda: beat_heartbeat_age() is not None, timeout=60, what="beat's first heartbeat")
            staff.goto("/")
            for name in BATTERIES[:-1]:
                expect(staff.locator(f'[data-battery="{name}"] .state')).to_have_text("answers")
            expect(staff.locator('[data-battery="workers"]')).to_contain_text("1 answered a ping within")
            expect(staff.locator('[data-battery="broker"]')).to_contain_text("waiting")
            expect(staff.locator(".status-banner")).to_contain_text("Ready")
            screenshot(staff, "home-status-all-running")


def test_the_api_docs_render_their_operations_grouped_by_resource(page: Page):
    page.goto(reverse("api-docs"))
    expect(page.locator(".opblock").first).to_be_visible(timeout=30_000)
    for tag in ("auth", "users"):
        expect(page.locator(f'.opblock-tag[data-tag="{tag}"]')).to_be_visible()
    screenshot(page, "api-docs")


PHONE = {"width": 375, "height": 740}


def test_the_missing_page_is_styled_and_accessible_on_a_phone(open_page):
    page = open_page(viewport=PHONE)
    response = page.goto("/no/such/page/")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    # Nothing wider than the phone's screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert accessibility_violations(page) == []
    screenshot(page, "404-phone")


ROOT = Path(__file__).resolve().parents[2]
STATIC_ERRORS = ROOT / "apps" / "core" / "static" / "errors"


def nginx_file_policy() -> str:
    """The Content-Security-Policy nginx gives static files, read from its snippet."""
    (snippet,) = (ROOT / "deploy" / "nginx").rglob("file-csp.conf*")
    policy = re.search(r'Content-Security-Policy "([^"]+)"', snippet.read_text())
    assert policy is not None
    return policy.group(1)


@pytest.mark.parametrize("status", [429, 503])
def test_the_error_pages_nginx_serves_are_styled_under_its_policy_for_files(page: Page, status: int):
    """nginx answers these when Django cannot; they must render under the policy it gives files."""
    policy = nginx_file_policy()
    body = (STATIC_ERRORS / f"{status}.html").read_text()
    page.route(
        "**/nginx-error",
        lambda route: route.fulfill(
            status=status,
            body=body,
            headers={"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": policy},
        ),
    )
    page.goto("/nginx-error")
    # The inline style applied: the status code is in the brand's heavy type.
    assert page.locator(".code").evaluate("element => getComputedStyle(element).fontWeight") == "800"
    assert accessibility_violations(page) == []
    screenshot(page, f"nginx-{status}")


def test_the_pages_are_accessible_in_dark_mode_too(open_page):
    staff_user = UserFactory(is_staff=True, is_superuser=True)
    page = open_page(color_scheme="dark")
    sign_in_to_admin(page, staff_user.email, DEFAULT_PASSWORD)
    for path in ("/", "/no/such/page/"):
        page.goto(path)
        assert accessibility_violations(page) == [], path
    page.goto("/")
    screenshot(page, "home-dark")
