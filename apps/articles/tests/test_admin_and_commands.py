import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.articles.models import Article
from apps.articles.pagination import CappedCountPaginator
from apps.articles.tests.factories import ArticleFactory
from apps.users.models import User
from apps.users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_logged_in(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_admin_publish_and_unpublish_actions_go_through_the_services(admin_client_logged_in, mailoutbox):
    drafts = ArticleFactory.create_batch(2)
    changelist = reverse("admin:articles_article_changelist")
    response = admin_client_logged_in.post(
        changelist, {"action": "publish", "_selected_action": [draft.pk for draft in drafts]}, follow=True
    )
    assert response.status_code == 200
    assert set(Article.objects.values_list("status", flat=True)) == {"published"}
    admin_client_logged_in.post(changelist, {"action": "unpublish", "_selected_action": [drafts[0].pk]})
    drafts[0].refresh_from_db()
    assert drafts[0].status == "draft"


def test_admin_changelist_searches_and_filters(admin_client_logged_in):
    ArticleFactory(title="Findable piece", published=True)
    response = admin_client_logged_in.get(
        reverse("admin:articles_article_changelist"), {"q": "Findable", "status__exact": "published"}
    )
    assert response.status_code == 200
    assert "Findable piece" in response.content.decode()


def test_the_admin_changelist_never_counts_the_whole_table(admin_client_logged_in, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "max_count", 3)
    ArticleFactory.create_batch(5, published=True)
    with CaptureQueriesContext(connection) as queries:
        response = admin_client_logged_in.get(
            reverse("admin:articles_article_changelist"), {"status__exact": "published"}
        )
    assert response.status_code == 200
    counts = [query["sql"] for query in queries.captured_queries if "COUNT(" in query["sql"].upper()]
    # One count, of at most max_count rows: no full total beside the filtered one.
    assert len(counts) == 1
    assert "LIMIT 3" in counts[0]
    assert response.context["cl"].result_count == 3


def test_a_page_past_the_capped_count_is_the_last_page_it_reaches(client, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "max_count", 3)
    articles = ArticleFactory.create_batch(5, published=True)
    newest_first = sorted(articles, key=lambda article: (article.published_at, article.pk), reverse=True)
    response = client.get(reverse("articles:list"), {"page": "99999999"})
    assert response.status_code == 200
    assert [article.slug for article in response.context["page_obj"]] == [a.slug for a in newest_first[:3]]


def test_seed_demo_creates_the_requested_users_and_articles(capsys):
    call_command("seed_demo", articles=250, users=5, seed=1)
    assert User.objects.filter(email__startswith="demo-").count() == 5
    assert Article.objects.count() == 250
    assert Article.objects.published().count() > 200
    assert "Created 5 user(s) and 250 article(s)." in capsys.readouterr().out


def test_an_edit_on_the_admin_change_form_is_visible_on_the_next_public_read(
    admin_client_logged_in, django_capture_on_commit_callbacks
):
    reader = Client()  # anonymous, beside the signed-in admin
    article = ArticleFactory(published=True, title="Before")
    public_list = reverse("v1:articles:article-list")
    assert reader.get(public_list).json()["results"][0]["title"] == "Before"  # now cached

    change = reverse("admin:articles_article_change", args=[article.pk])
    form = admin_client_logged_in.get(change).context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    data.update(title="After", author=article.author_id)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_logged_in.post(change, data)
    assert response.status_code == 302, response.content.decode()[:2000]

    assert reader.get(public_list).json()["results"][0]["title"] == "After"


def test_a_delete_in_the_admin_is_visible_on_the_next_public_read(
    admin_client_logged_in, django_capture_on_commit_callbacks
):
    reader = Client()
    kept, deleted = ArticleFactory.create_batch(2, published=True)
    public_list = reverse("v1:articles:article-list")
    assert len(reader.get(public_list).json()["results"]) == 2  # now cached

    delete = reverse("admin:articles_article_delete", args=[deleted.pk])
    with django_capture_on_commit_callbacks(execute=True):
        assert admin_client_logged_in.post(delete, {"post": "yes"}).status_code == 302

    assert [item["slug"] for item in reader.get(public_list).json()["results"]] == [kept.slug]


def test_an_authors_new_name_is_visible_on_the_next_public_read(client, django_capture_on_commit_callbacks):
    article = ArticleFactory(published=True)
    public_list = reverse("v1:articles:article-list")
    client.get(public_list)  # now cached
    author = article.author

    with django_capture_on_commit_callbacks(execute=True):
        author.first_name, author.last_name = "Ada", "Lovelace"
        author.save()

    assert client.get(public_list).json()["results"][0]["author"]["name"] == "Ada Lovelace"
