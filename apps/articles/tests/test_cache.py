import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.articles.tests.factories import ArticleFactory

pytestmark = pytest.mark.django_db


def test_a_repeated_list_request_is_served_from_the_cache(api_client):
    ArticleFactory.create_batch(3, published=True)
    first = api_client.get(reverse("v1:articles:article-list"))
    with CaptureQueriesContext(connection) as queries:
        second = api_client.get(reverse("v1:articles:article-list"))
    assert second.json() == first.json()
    assert len(queries) == 0


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
    assert api_client.get(reverse("v1:articles:article-list")).json()["count"] == 0
