import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.articles import cache as article_cache
from apps.articles.models import Article
from apps.articles.tests.factories import ArticleFactory
from apps.users.tests.factories import UserFactory
from tests.support.net import closed_port

pytestmark = pytest.mark.django_db


def test_a_repeated_list_request_is_served_from_the_cache(api_client):
    ArticleFactory.create_batch(3, published=True)
    first = api_client.get(reverse("v1:articles:article-list"))
    with CaptureQueriesContext(connection) as queries:
        second = api_client.get(reverse("v1:articles:article-list"))
    assert second.json() == first.json()
    assert len(queries) == 0


def test_a_signed_in_reader_is_served_the_list_from_the_cache(api_client):
    ArticleFactory.create_batch(3, published=True)
    api_client.force_authenticate(UserFactory())
    first = api_client.get(reverse("v1:articles:article-list"))
    with CaptureQueriesContext(connection) as queries:
        second = api_client.get(reverse("v1:articles:article-list"))
    assert second.json() == first.json()
    assert len(queries) == 0


def test_a_repeated_detail_request_is_served_from_the_cache(api_client):
    article = ArticleFactory(published=True)
    detail = reverse("v1:articles:article-detail", kwargs={"slug": article.slug})
    first = api_client.get(detail)
    with CaptureQueriesContext(connection) as queries:
        second = api_client.get(detail)
    assert (first.status_code, second.json()) == (200, first.json())
    assert len(queries) == 0


def test_an_authors_draft_is_never_cached(api_client):
    draft = ArticleFactory(title="Before")
    detail = reverse("v1:articles:article-detail", kwargs={"slug": draft.slug})
    api_client.force_authenticate(draft.author)
    assert api_client.get(detail).json()["title"] == "Before"
    Article.objects.filter(pk=draft.pk).update(title="After")  # no service: nothing is invalidated
    assert api_client.get(detail).json()["title"] == "After"
    api_client.force_authenticate(None)
    assert api_client.get(detail).status_code == 404


def test_an_edit_is_visible_on_the_next_request(api_client, django_capture_on_commit_callbacks):
    article = ArticleFactory(published=True, title="Before")
    detail = reverse("v1:articles:article-detail", kwargs={"slug": article.slug})
    assert api_client.get(detail).json()["title"] == "Before"
    assert api_client.get(reverse("v1:articles:article-list")).json()["results"][0]["title"] == "Before"

    api_client.force_authenticate(article.author)
    with django_capture_on_commit_callbacks(execute=True):
        api_client.patch(detail, {"title": "After"}, format="json")
    api_client.force_authenticate(None)

    assert api_client.get(detail).json()["title"] == "After"
    assert api_client.get(reverse("v1:articles:article-list")).json()["results"][0]["title"] == "After"


def test_an_unpublished_article_disappears_from_cached_pages(api_client, django_capture_on_commit_callbacks):
    article = ArticleFactory(published=True)
    detail = reverse("v1:articles:article-detail", kwargs={"slug": article.slug})
    assert api_client.get(detail).status_code == 200
    api_client.force_authenticate(article.author)
    with django_capture_on_commit_callbacks(execute=True):
        api_client.post(reverse("v1:articles:article-unpublish", kwargs={"slug": article.slug}))
    api_client.force_authenticate(None)
    assert api_client.get(detail).status_code == 404
    assert api_client.get(reverse("v1:articles:article-list")).json()["results"] == []


def test_a_value_cached_before_a_change_is_never_read_after_it():
    assert article_cache.cached("test:stale", lambda: "before") == "before"
    assert article_cache.cached("test:stale", lambda: "not rebuilt") == "before"
    article_cache.invalidate()
    assert article_cache.cached("test:stale", lambda: "after") == "after"


def test_a_value_is_not_read_once_the_cache_has_evicted_its_generation():
    assert article_cache.cached("test:evicted", lambda: "before") == "before"
    cache.delete(article_cache.GENERATION_KEY)
    assert article_cache.cached("test:evicted", lambda: "after") == "after"
    assert article_cache.cached("test:evicted", lambda: "not rebuilt") == "after"


def test_with_the_cache_down_every_read_builds_the_value_and_nothing_fails(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
            "OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": 0.5},
        }
    }
    assert article_cache.cached("test:down", lambda: "first") == "first"
    assert article_cache.cached("test:down", lambda: "second") == "second"
    article_cache.invalidate()  # a no-op, not an error
