"""The site's pages in a real browser: what a new user sees first, held to the CSP and to axe-core."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from apps.articles import autocomplete, services
from apps.articles.tests.factories import ArticleFactory
from apps.core.http.navigation import site_name
from apps.users.tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.browser.checks import accessibility_violations, screenshot
from tests.support.processes import celery, celery_env, publishing_to
from tests.support.redis_servers import redis_server
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BATTERIES = ["database", "cache", "broker", "workers", "beat", "broker durability", "front"]


def sign_in_to_admin(page: Page, email: str) -> None:
    page.goto(reverse("admin:login"))
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#site-name")).to_contain_text(f"{site_name()} administration")


@pytest.fixture
def staff(page: Page) -> Page:
    user = UserFactory(is_staff=True, is_superuser=True)
    sign_in_to_admin(page, user.email)
    return page


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


def test_typing_in_the_search_suggests_titles_from_redis_and_a_suggestion_opens_its_article(page: Page):
    author = UserFactory(first_name="Grace", last_name="Hopper")
    wanted = ArticleFactory(published=True, title="Deploying on a Friday", author=author)
    ArticleFactory(published=True, title="Debugging the broker")
    ArticleFactory(published=True, title="Caching with nginx")
    autocomplete.rebuild_from_database()

    page.goto(reverse("articles:list"))
    with page.expect_response(lambda response: "/autocomplete/" in response.url) as answer:
        page.get_by_role("searchbox", name="Search titles").press_sequentially("dep", delay=40)
    assert answer.value.json()["served_from"] == "redis"
    suggestion = page.locator("#article-suggestions").get_by_role("link", name="Deploying on a Friday")
    expect(suggestion).to_be_visible()
    expect(page.locator("#article-suggestions a")).to_have_count(1)
    assert accessibility_violations(page) == []
    screenshot(page, "articles-search", full_page=False)

    suggestion.click()
    expect(page).to_have_url(f"{page.url.split('/articles/')[0]}{wanted.get_absolute_url()}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Deploying on a Friday")
    expect(page.locator("article .meta")).to_contain_text("Grace Hopper")
    assert accessibility_violations(page) == []


def test_without_javascript_the_search_box_is_a_plain_search_of_the_list(open_page):
    ArticleFactory(published=True, title="Deploying on a Friday")
    ArticleFactory(published=True, title="Caching with nginx")
    page = open_page(java_script_enabled=False)
    page.goto(reverse("articles:list"))
    page.get_by_role("searchbox", name="Search titles").fill("friday")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".article-list")).to_contain_text("Deploying on a Friday")
    expect(page.locator(".article-list")).not_to_contain_text("Caching with nginx")


def test_an_article_published_in_the_admin_appears_on_the_list(staff: Page):
    draft = ArticleFactory(title="Published from the admin")
    ArticleFactory.create_batch(3, published=True)
    staff.goto(reverse("admin:articles_article_changelist"))
    expect(staff.locator("#result_list")).to_contain_text("Published from the admin")
    screenshot(staff, "admin-changelist")
    staff.locator(f'input[name="_selected_action"][value="{draft.pk}"]').check()
    staff.get_by_role("combobox", name="Action").select_option("publish")
    staff.get_by_role("button", name="Go").click()
    expect(staff.locator(".messagelist")).to_be_visible()

    staff.goto(reverse("articles:list"))
    expect(staff.locator(".article-list")).to_contain_text("Published from the admin")
    expect(staff.locator(".article-list li")).to_have_count(4)
    assert accessibility_violations(staff) == []
    screenshot(staff, "articles-list")


def test_the_api_docs_render_their_operations_grouped_by_resource(page: Page):
    page.goto(reverse("api-docs"))
    expect(page.locator(".opblock").first).to_be_visible(timeout=30_000)
    for tag in ("articles", "auth", "users"):
        expect(page.locator(f'.opblock-tag[data-tag="{tag}"]')).to_be_visible()
    expect(page.locator(".opblock-summary-description", has_text="List published articles")).to_be_visible()
    assert page.locator(".opblock").count() >= 15
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


def test_the_article_list_and_an_article_read_on_a_phone(open_page):
    article = ArticleFactory(published=True, title="A title long enough to need a second line on a phone")
    page = open_page(viewport=PHONE)
    for path in (reverse("articles:list"), article.get_absolute_url()):
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert accessibility_violations(page) == []
    screenshot(page, "article-phone")


def test_an_article_published_through_the_service_is_found_by_the_search(page: Page):
    article = services.article_create(author=UserFactory(), title="Zebra crossings")
    services.article_publish(article=article)
    page.goto(reverse("articles:list"))
    page.get_by_role("searchbox", name="Search titles").press_sequentially("zeb", delay=40)
    expect(page.locator("#article-suggestions").get_by_role("link", name="Zebra crossings")).to_be_visible()


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
    article = ArticleFactory(published=True)
    page = open_page(color_scheme="dark")
    sign_in_to_admin(page, staff_user.email)
    for path in ("/", reverse("articles:list"), article.get_absolute_url(), "/no/such/page/"):
        page.goto(path)
        assert accessibility_violations(page) == [], path
    page.goto("/")
    screenshot(page, "home-dark")
