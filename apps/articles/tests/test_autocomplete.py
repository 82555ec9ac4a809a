import pytest
from django.core.management import call_command
from django.urls import reverse

from apps.articles import autocomplete, services, tasks
from apps.articles.tests.factories import ArticleFactory
from tests.support.net import closed_port

pytestmark = pytest.mark.django_db

URL = "v1:articles:article-autocomplete"


def suggest(api_client, q: str) -> dict:
    response = api_client.get(reverse(URL), {"q": q})
    assert response.status_code == 200, response.content
    return response.json()


def publish(article, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.article_publish(article=article)


def test_a_published_title_is_suggested_from_redis_by_case_insensitive_prefix(
    api_client, django_capture_on_commit_callbacks
):
    publish(ArticleFactory(title="Celery beat replaces cron"), django_capture_on_commit_callbacks)
    publish(ArticleFactory(title="Caching with Redis"), django_capture_on_commit_callbacks)
    ArticleFactory(title="Celery draft")  # never published
    body = suggest(api_client, "CELERY b")
    assert body["served_from"] == "redis"
    assert [item["title"] for item in body["results"]] == ["Celery beat replaces cron"]
    assert [item["title"] for item in suggest(api_client, "c")["results"]] == [
        "Caching with Redis",
        "Celery beat replaces cron",
    ]


def test_edit_unpublish_and_delete_keep_the_index_in_step(api_client, django_capture_on_commit_callbacks):
    article = ArticleFactory(title="Original title")
    publish(article, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.article_update(article=article, title="Renamed title")
    assert [item["title"] for item in suggest(api_client, "re")["results"]] == ["Renamed title"]
    assert suggest(api_client, "orig")["results"] == []
    with django_capture_on_commit_callbacks(execute=True):
        services.article_unpublish(article=article)
    assert suggest(api_client, "re")["results"] == []
    publish(article, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.article_delete(article=article)
    assert suggest(api_client, "re")["results"] == []


def test_at_most_ten_suggestions(api_client, django_capture_on_commit_callbacks):
    for article in ArticleFactory.create_batch(12, title="Same prefix"):
        publish(article, django_capture_on_commit_callbacks)
    assert len(suggest(api_client, "same")["results"]) == 10


def test_with_redis_down_it_answers_from_the_database(api_client, settings):
    ArticleFactory(published=True, title="Still found")
    settings.AUTOCOMPLETE_REDIS_URL = f"redis://127.0.0.1:{closed_port()}/2"
    body = suggest(api_client, "still")
    assert body["served_from"] == "database"
    assert [item["title"] for item in body["results"]] == ["Still found"]


@pytest.mark.parametrize("params", [{}, {"q": ""}, {"q": "   "}, {"q": "x" * 101}])
def test_a_missing_or_oversize_query_is_400_naming_q(api_client, params):
    response = api_client.get(reverse(URL), params)
    assert response.status_code == 400
    assert "q" in response.json()["error"]["fields"]


def test_the_rebuild_command_indexes_every_published_title(api_client, capsys):
    ArticleFactory.create_batch(3, published=True, title="Rebuilt")
    ArticleFactory(title="Rebuilt draft")
    call_command("rebuild_autocomplete")
    assert "Indexed 3 published title(s)." in capsys.readouterr().out
    assert len(suggest(api_client, "rebuilt")["results"]) == 3
    assert autocomplete.client() is not None


def wipe_index() -> None:
    """What a Redis restarted without persistence (or an eviction) leaves: no index, no marker."""
    client = autocomplete.client()
    assert client is not None
    client.delete(*autocomplete._keys(), *autocomplete._marker_keys())


def titles(api_client, q: str) -> tuple[list[str], str]:
    body = suggest(api_client, q)
    return [item["title"] for item in body["results"]], body["served_from"]


def test_a_missing_index_answers_from_the_database_and_queues_one_rebuild(
    api_client, django_capture_on_commit_callbacks
):
    for title in ("Healing index", "Healing twice"):
        publish(ArticleFactory(title=title), django_capture_on_commit_callbacks)
    wipe_index()

    with django_capture_on_commit_callbacks(execute=True) as queued:
        assert titles(api_client, "healing") == (["Healing index", "Healing twice"], "database")
    assert len(queued) == 1, "the lookup that found the index missing queues a rebuild"
    assert titles(api_client, "healing") == (["Healing index", "Healing twice"], "redis")

    wipe_index()
    with django_capture_on_commit_callbacks(execute=False) as queued:
        titles(api_client, "healing")
    with django_capture_on_commit_callbacks(execute=False) as queued_again:
        assert titles(api_client, "healing")[1] == "database"
    assert (len(queued), len(queued_again)) == (1, 0), "one rebuild per slot, however many lookups"


def test_the_sweep_reindexes_an_edit_whose_message_never_reached_the_broker(
    api_client, django_capture_on_commit_callbacks
):
    article = ArticleFactory(title="Before the outage")
    publish(article, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):  # the index message is lost
        services.article_update(article=article, title="After the outage")
    assert titles(api_client, "after") == ([], "redis")

    assert tasks.sweep_autocomplete_index() == "reindexed 1 changed article(s)"
    assert titles(api_client, "after") == (["After the outage"], "redis")
    assert titles(api_client, "before") == ([], "redis")


def test_the_sweep_rebuilds_an_index_that_disagrees_with_the_database(
    api_client, django_capture_on_commit_callbacks
):
    kept, deleted = ArticleFactory(title="Sweep kept"), ArticleFactory(title="Sweep deleted")
    publish(kept, django_capture_on_commit_callbacks)
    publish(deleted, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):  # the removal message is lost
        services.article_delete(article=deleted)

    assert tasks.sweep_autocomplete_index().startswith("rebuilt: 1 title(s), the index held 2 for 1")
    assert titles(api_client, "sweep") == (["Sweep kept"], "redis")


def test_the_sweep_rebuilds_a_missing_index(api_client, django_capture_on_commit_callbacks):
    publish(ArticleFactory(title="Swept back"), django_capture_on_commit_callbacks)
    wipe_index()
    assert tasks.sweep_autocomplete_index() == "rebuilt: 1 title(s), the index was missing"
    assert titles(api_client, "swept") == (["Swept back"], "redis")
