"""The articles app on a real worker and two real beats, against a private Redis.

Scheduled publishing replaces a cron job: beat publishes each due article exactly once, even
with a second beat started by mistake; the worker indexes the title for autocomplete; and a
notification queued while the broker was down is sent by the sweep once it is back.
"""

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
from rest_framework.test import APIClient

from apps.articles import services
from apps.articles.models import Article
from apps.articles.tests.factories import ArticleFactory
from tests.support.net import closed_port
from tests.support.processes import CeleryProcess, celery_env, publishing_to, start_celery
from tests.support.waiting import wait_until

AUTOCOMPLETE_PREFIX = "articles-real-worker"

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def stack(database, redis_port, log_dir, django_db_blocker) -> Iterator[dict[str, CeleryProcess]]:
    env = celery_env(
        database=database,
        redis_port=redis_port,
        ARTICLES_PUBLISH_INTERVAL="1",
        ARTICLES_SWEEP_INTERVAL="1",
        ARTICLES_NOTIFY_GRACE_SECONDS="1",
        AUTOCOMPLETE_KEY_PREFIX=AUTOCOMPLETE_PREFIX,
    )
    processes = {
        "worker": start_celery("worker", env, log_dir, "--concurrency=2"),
        "beat": start_celery("beat", env, log_dir),
        # Started by mistake: the slot lock and the conditional UPDATE must make it harmless.
        "second_beat": start_celery("beat", env, log_dir, "--pidfile="),
    }
    try:
        for process in processes.values():
            process.wait_until_ready()
        yield processes
    finally:
        for process in processes.values():
            process.stop()
        with django_db_blocker.unblock():
            PeriodicTask.objects.all().delete()
            IntervalSchedule.objects.all().delete()
            CrontabSchedule.objects.all().delete()


@pytest.fixture
def shared_redis(settings, redis_port):
    """Point this process's autocomplete and broker at the private Redis the worker uses."""
    settings.AUTOCOMPLETE_REDIS_URL = f"redis://127.0.0.1:{redis_port}/2"
    settings.AUTOCOMPLETE_KEY_PREFIX = AUTOCOMPLETE_PREFIX
    with publishing_to(f"redis://127.0.0.1:{redis_port}/1"):
        yield


@pytest.mark.usefixtures("shared_redis")
def test_beat_publishes_due_articles_exactly_once_and_autocomplete_finds_them(stack):
    # Far enough ahead that the three schedules below are done first on a loaded machine.
    due_at = timezone.now() + timedelta(seconds=10)
    articles = [
        services.article_schedule(article=ArticleFactory(title=f"Beat published {n}"), publish_at=due_at)
        for n in range(3)
    ]
    wait_until(
        lambda: (
            Article.objects.filter(pk__in=[a.pk for a in articles], author_notified_at__isnull=False).count()
            == 3
        ),
        timeout=60,
        what="beat to publish the articles and the worker to notify their authors",
    )
    for article in articles:
        article.refresh_from_db()
        assert article.status == Article.Status.PUBLISHED
        assert article.published_at == due_at

    def suggested() -> list[str]:
        response = APIClient().get(reverse("v1:articles:article-autocomplete"), {"q": "beat published"})
        body = response.json()
        return [item["title"] for item in body["results"]] if body["served_from"] == "redis" else []

    wait_until(lambda: len(suggested()) == 3, timeout=30, what="the worker to index the titles")
    # Each article's publication happened once; of the two beats, one sent and the other stood by.
    worker_log = stack["worker"].log()
    published_lines = [line for line in worker_log.splitlines() if "scheduled article(s)" in line]
    assert sum(int(line.split("published ")[1].split()[0]) for line in published_lines) == 3
    standing_by = [
        name for name in ("beat", "second_beat") if "stands by and sends nothing" in stack[name].log()
    ]
    assert len(standing_by) == 1, standing_by


@pytest.mark.faults
def test_a_notification_lost_to_a_broker_outage_is_sent_by_the_sweep(stack, settings, redis_port):
    """Broke: the broker, unreachable while an author published (in-process; tests/faults has it
    under gunicorn).
    Saw: the publish answered 200; the author's email came once the sweep ran.
    Lost: nothing.
    """
    settings.AUTOCOMPLETE_REDIS_URL = f"redis://127.0.0.1:{redis_port}/2"
    article = ArticleFactory(title="Published during an outage")
    client = APIClient()
    client.force_authenticate(article.author)
    with publishing_to(f"redis://127.0.0.1:{closed_port()}/1"):
        response = client.post(reverse("v1:articles:article-publish", kwargs={"slug": article.slug}))
    # The request succeeded although its tasks could not be queued (the running worker's sweep may
    # already have found the lost notification: this stack's grace is one second).
    assert response.status_code == 200
    article.refresh_from_db()
    assert article.status == Article.Status.PUBLISHED
    wait_until(
        lambda: Article.objects.filter(pk=article.pk, author_notified_at__isnull=False).exists(),
        timeout=60,
        what="the sweep to queue the lost notification and the worker to send it",
    )
    stack["worker"].wait_for_log("requeued 1 author notification(s)", timeout=10)
