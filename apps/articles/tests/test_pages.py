import pytest
from django.urls import reverse

from apps.articles.tests.factories import ArticleFactory
from apps.articles.views import RECENTLY_VIEWED_SESSION_KEY

pytestmark = pytest.mark.django_db


def test_the_list_page_links_every_published_article(client):
    published = ArticleFactory(published=True, title="Visible")
    ArticleFactory(title="Hidden draft")
    response = client.get(reverse("articles:list"))
    content = response.content.decode()
    assert response.status_code == 200
    assert f'href="{published.get_absolute_url()}"' in content
    assert "Hidden draft" not in content


def test_the_home_page_menu_links_to_the_article_list(client):
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert f'href="{reverse("articles:list")}"' in response.content.decode()


def test_the_detail_page_shows_the_last_viewed_articles_from_the_session(client):
    articles = ArticleFactory.create_batch(7, published=True)
    for article in articles:
        assert client.get(article.get_absolute_url()).status_code == 200
    response = client.get(articles[0].get_absolute_url())
    recently_viewed = [viewed.pk for viewed in response.context["recently_viewed"]]
    # Newest first, at most four others beside the current one, the current one not repeated.
    assert recently_viewed == [articles[6].pk, articles[5].pk, articles[4].pk, articles[3].pk]
    assert client.session[RECENTLY_VIEWED_SESSION_KEY][0] == articles[0].pk
    assert len(client.session[RECENTLY_VIEWED_SESSION_KEY]) == 5
    assert articles[6].title in response.content.decode()


def test_a_draft_has_no_page(client):
    assert client.get(ArticleFactory().get_absolute_url()).status_code == 404
