"""The example app's pages in a real browser: search as you type, publishing from the admin, reading
on a phone (the browser fixtures are tests/support/browser.py's)."""

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from apps.articles import autocomplete, services
from apps.articles.tests.factories import ArticleFactory
from apps.users.tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.support.browser import accessibility_violations, screenshot, sign_in_to_admin

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 375, "height": 740}


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


def test_the_api_docs_list_the_article_operations_under_their_own_group(page: Page):
    page.goto(reverse("api-docs"))
    expect(page.locator('.opblock-tag[data-tag="articles"]')).to_be_visible(timeout=30_000)
    expect(page.locator(".opblock-summary-description", has_text="List published articles")).to_be_visible()


def test_the_article_pages_are_accessible_in_dark_mode_too(open_page):
    staff_user = UserFactory(is_staff=True, is_superuser=True)
    article = ArticleFactory(published=True)
    page = open_page(color_scheme="dark")
    sign_in_to_admin(page, staff_user.email, DEFAULT_PASSWORD)
    for path in (reverse("articles:list"), article.get_absolute_url()):
        page.goto(path)
        assert accessibility_violations(page) == [], path
