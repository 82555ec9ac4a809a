from datetime import datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.articles import cache as article_cache
from apps.articles.models import Article
from apps.articles.tests.factories import ArticleFactory
from apps.users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LIST_URL = "v1:articles:article-list"


def detail_url(article: Article, action: str = "detail") -> str:
    return reverse(f"v1:articles:article-{action}", kwargs={"slug": article.slug})


def test_the_public_list_shows_only_published_articles_newest_first(api_client):
    older = ArticleFactory(published=True, published_at=timezone.now() - timedelta(days=2))
    newer = ArticleFactory(published=True)
    ArticleFactory()  # a draft
    ArticleFactory(status=Article.Status.SCHEDULED, publish_at=timezone.now() + timedelta(days=1))
    body = api_client.get(reverse(LIST_URL)).json()
    assert [item["slug"] for item in body["results"]] == [newer.slug, older.slug]
    assert set(body["results"][0]) >= {"title", "slug", "body", "author", "status", "published_at", "url"}
    assert "email" not in body["results"][0]["author"]


def test_the_list_filters_by_author_and_dates_and_orders_by_title(api_client):
    author = UserFactory()
    ArticleFactory(published=True, author=author, title="B title")
    ArticleFactory(published=True, author=author, title="A title")
    ArticleFactory(published=True, published_at=timezone.now() - timedelta(days=30))
    by_author = api_client.get(reverse(LIST_URL), {"author": author.pk, "ordering": "title"}).json()
    assert [item["title"] for item in by_author["results"]] == ["A title", "B title"]
    recent = api_client.get(
        reverse(LIST_URL), {"published_after": str(timezone.now().date() - timedelta(days=1))}
    )
    assert len(recent.json()["results"]) == 2


def test_the_date_filters_include_both_named_days_whole(api_client):
    day = timezone.now().date() - timedelta(days=10)
    start = timezone.make_aware(datetime.combine(day, time.min))
    inside = [ArticleFactory(published=True, published_at=start + timedelta(hours=h)) for h in (0, 23)]
    ArticleFactory(published=True, published_at=start - timedelta(microseconds=1))
    ArticleFactory(published=True, published_at=start + timedelta(days=1))
    response = api_client.get(reverse(LIST_URL), {"published_after": str(day), "published_before": str(day)})
    assert [item["slug"] for item in response.json()["results"]] == [inside[1].slug, inside[0].slug]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"author": "abc"}, "author"),
        ({"published_after": "yesterday"}, "published_after"),
        ({"ordering": "body"}, "ordering"),
        ({"published_after": "2026-02-01", "published_before": "2026-01-01"}, "published_before"),
        ({"page": "2"}, "page"),
        ({"page": "99999999"}, "page"),
        ({"cursor": "not-a-cursor"}, None),
    ],
)
def test_bad_list_parameters_are_4xx_naming_the_parameter(api_client, params, field):
    ArticleFactory(published=True)
    response = api_client.get(reverse(LIST_URL), params)
    assert 400 <= response.status_code < 500
    if field:
        assert field in response.json()["error"]["fields"]


def test_the_list_runs_the_same_number_of_queries_for_5_and_50_rows(api_client):
    ArticleFactory.create_batch(50, published=True)
    counts = []
    for page_size in (5, 50):
        article_cache.invalidate()  # each request counts the table, as the first one after a change does
        with CaptureQueriesContext(connection) as queries:
            response = api_client.get(reverse(LIST_URL), {"page_size": page_size})
        assert len(response.json()["results"]) == page_size
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_list_pages_by_cursor_through_every_article_once_without_counting(api_client):
    articles = ArticleFactory.create_batch(5, published=True)
    seen, url, pages = [], reverse(LIST_URL) + "?page_size=2", 0
    with CaptureQueriesContext(connection) as queries:
        while url:
            body = api_client.get(url).json()
            assert "count" not in body
            seen += [item["slug"] for item in body["results"]]
            url, pages = body["next"], pages + 1
    assert pages == 3
    expected = sorted(articles, key=lambda article: (article.published_at, article.pk), reverse=True)
    assert seen == [article.slug for article in expected]
    assert not [query for query in queries.captured_queries if "COUNT(" in query["sql"].upper()]


def test_a_page_number_is_refused_with_a_400_that_says_to_follow_the_cursor(api_client):
    ArticleFactory(published=True)
    response = api_client.get(reverse(LIST_URL), {"page": "5000"})
    assert response.status_code == 400
    assert "cursor" in response.json()["error"]["fields"]["page"][0]


def test_the_title_ordering_pages_by_cursor_too(api_client):
    for title in ["C", "A", "B", "A"]:
        ArticleFactory(published=True, title=title)
    first = api_client.get(reverse(LIST_URL), {"ordering": "title", "page_size": 2}).json()
    second = api_client.get(first["next"]).json()
    titles = [item["title"] for item in first["results"] + second["results"]]
    assert titles == ["A", "A", "B", "C"]


def test_an_author_creates_a_draft_and_a_bad_payload_names_the_field(api_client):
    author = UserFactory()
    api_client.force_authenticate(author)
    bad = api_client.post(reverse(LIST_URL), {"body": "no title"}, format="json")
    assert bad.status_code == 400
    assert "title" in bad.json()["error"]["fields"]
    created = api_client.post(reverse(LIST_URL), {"title": "My first", "body": "Hello"}, format="json")
    assert created.status_code == 201
    assert created.json()["status"] == "draft"
    assert Article.objects.get(slug="my-first").author == author


def test_anonymous_users_cannot_write(api_client):
    response = api_client.post(reverse(LIST_URL), {"title": "x"}, format="json")
    assert response.status_code == 401


def test_only_the_author_may_change_an_article(api_client):
    article = ArticleFactory(published=True)
    api_client.force_authenticate(UserFactory())
    assert api_client.patch(detail_url(article), {"title": "Mine now"}, format="json").status_code == 403
    assert api_client.delete(detail_url(article)).status_code == 403
    draft = ArticleFactory()
    assert api_client.patch(detail_url(draft), {"title": "x"}, format="json").status_code == 404


def test_the_author_edits_publishes_schedules_and_deletes(api_client):
    article = ArticleFactory()
    api_client.force_authenticate(article.author)
    assert api_client.get(detail_url(article)).status_code == 200  # own draft is visible
    edited = api_client.patch(detail_url(article), {"title": "New title"}, format="json")
    assert edited.json()["title"] == "New title"
    published = api_client.post(detail_url(article, "publish"))
    assert published.json()["status"] == "published"
    api_client.post(detail_url(article, "unpublish"))
    when = (timezone.now() + timedelta(hours=2)).isoformat()
    scheduled = api_client.post(detail_url(article, "schedule"), {"publish_at": when}, format="json")
    assert scheduled.json()["status"] == "scheduled"
    assert api_client.delete(detail_url(article)).status_code == 204
    assert not Article.objects.filter(pk=article.pk).exists()


def test_scheduling_in_the_past_is_400_naming_publish_at(api_client):
    article = ArticleFactory()
    api_client.force_authenticate(article.author)
    past = (timezone.now() - timedelta(hours=1)).isoformat()
    response = api_client.post(detail_url(article, "schedule"), {"publish_at": past}, format="json")
    assert response.status_code == 400
    assert "publish_at" in response.json()["error"]["fields"]
    wrong_type = api_client.post(detail_url(article, "schedule"), {"publish_at": 12}, format="json")
    assert wrong_type.status_code == 400


def test_a_slug_clash_on_update_is_400_not_500(api_client):
    ArticleFactory(slug="taken")
    article = ArticleFactory()
    api_client.force_authenticate(article.author)
    response = api_client.patch(detail_url(article), {"slug": "taken"}, format="json")
    assert response.status_code == 400
    assert "slug" in response.json()["error"]["fields"]


def test_mine_lists_the_authors_articles_in_every_state(api_client):
    author = UserFactory()
    ArticleFactory(author=author)
    ArticleFactory(author=author, published=True)
    ArticleFactory(published=True)
    api_client.force_authenticate(author)
    assert api_client.get(reverse("v1:articles:article-mine")).json()["count"] == 2


def test_drafts_of_others_are_404(api_client):
    assert api_client.get(detail_url(ArticleFactory())).status_code == 404
