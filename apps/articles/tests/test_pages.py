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


def test_the_list_search_without_javascript_keeps_the_titles_that_contain_the_words(client):
    ArticleFactory(published=True, title="Deploying on a Friday")
    ArticleFactory(published=True, title="Caching with nginx")
    content = client.get(reverse("articles:list"), {"q": "friday"}).content.decode()
    assert "Deploying on a Friday" in content
    assert "Caching with nginx" not in content
    assert "1 result for" in content


def test_an_author_without_a_name_is_shown_by_number_not_as_a_blank(client):
    article = ArticleFactory(published=True, author__first_name="", author__last_name="")
    named = ArticleFactory(published=True, author__first_name="Ada", author__last_name="Lovelace")
    list_page = client.get(reverse("articles:list")).content.decode()
    assert f"Author {article.author.pk}" in list_page
    assert "Ada Lovelace" in list_page
    assert article.author.email not in list_page
    assert f"Author {article.author.pk}" in client.get(article.get_absolute_url()).content.decode()
    assert "Ada Lovelace" in client.get(named.get_absolute_url()).content.decode()


def test_the_list_says_which_page_of_how_many_and_keeps_the_search_in_its_links(client):
    ArticleFactory.create_batch(21, published=True, title="Release notes")
    content = client.get(reverse("articles:list"), {"q": "release", "page": 2}).content.decode()
    assert "Page 2 of 2" in content
    assert 'href="?q=release&amp;page=1"' in content


def test_a_search_with_more_matches_than_the_capped_count_says_at_least(client, monkeypatch):
    from apps.articles.pagination import CappedCountPaginator

    monkeypatch.setattr(CappedCountPaginator, "max_count", 2)
    for n in range(3):
        ArticleFactory(published=True, title=f"Release {n}")

    content = client.get(reverse("articles:list"), {"q": "release"}).content.decode()

    assert "At least 2 results for “release”" in content
