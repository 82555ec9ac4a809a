"""The Celery broker down while users publish: the requests succeed, the work runs once it is back."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
from django.conf import settings

from apps.articles.models import Article
from apps.articles.tests.factories import ArticleFactory
from apps.users.tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.support.processes import celery, celery_env, database_url
from tests.support.redis_servers import redis_server
from tests.support.waiting import wait_until
from tests.support.web import running_web

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.django_db(transaction=True)]

TITLE = "Published while the broker was down"


def test_publishing_while_the_broker_is_down_succeeds_and_the_queued_work_runs_once_it_is_back(log_dir):
    """Broke: the Celery broker (a redis-server of its own, apart from the cache): down when an
    author published an article under real gunicorn, then started, with a worker and beat.
    Saw: the publish answered 200 with the article published, within the publish retry policy (about
    a second), although its two
    tasks (the author's email, the autocomplete entry) could not be queued; the failure was logged.
    Once the broker, a worker and beat were up, beat's sweep queued the work again: the author got
    the email and autocomplete found the title in Redis.
    Lost: nothing; the work waited in the database (an article published, its author not yet
    notified) and the sweep found it.
    """
    author = UserFactory()
    article = ArticleFactory(author=author, title=TITLE)

    with redis_server() as cache, redis_server(started=False) as broker:
        web_env = {
            "DATABASE_URL": database_url(settings.DATABASES["default"]),
            "REDIS_URL": cache.url(),
            "CELERY_BROKER_URL": broker.url(0),
            "CELERY_TASK_ALWAYS_EAGER": "false",
        }
        with running_web(web_env, log_dir) as web:
            token = web.request(
                "POST", "/api/v1/auth/token/", body={"email": author.email, "password": DEFAULT_PASSWORD}
            ).json()["token"]

            started = time.monotonic()
            published = web.request(
                "POST",
                f"/api/v1/articles/{article.slug}/publish/",
                headers={"Authorization": f"Token {token}"},
            )
            print(f"publish with the broker down answered in {time.monotonic() - started:.2f} s")

            assert published.status == 200, published.body
            assert published.json()["status"] == "published"
            article.refresh_from_db()
            assert article.status == Article.Status.PUBLISHED
            assert article.author_notified_at is None
            assert "could not queue task apps.articles.tasks.notify_author_published" in web.log()

            broker.start()
            env = celery_env(
                database=settings.DATABASES["default"],
                redis_port=cache.port,
                broker_url=broker.url(0),
                ARTICLES_SWEEP_INTERVAL="1",
                ARTICLES_NOTIFY_GRACE_SECONDS="1",
                CACHE_KEY_PREFIX=web.env["CACHE_KEY_PREFIX"],
                AUTOCOMPLETE_KEY_PREFIX=web.env["AUTOCOMPLETE_KEY_PREFIX"],
            )
            with celery("worker", env, log_dir, "--concurrency=1") as worker, celery("beat", env, log_dir):
                wait_until(
                    lambda: Article.objects.filter(pk=article.pk, author_notified_at__isnull=False).exists(),
                    timeout=90,
                    what="the sweep to queue the lost notification and the worker to send it",
                )

                def suggested() -> list[str]:
                    reply = web.request("GET", f"/api/v1/articles/autocomplete/?{urlencode({'q': TITLE})}")
                    body = reply.json()
                    return (
                        [item["title"] for item in body["results"]] if body["served_from"] == "redis" else []
                    )

                wait_until(lambda: suggested() == [TITLE], timeout=60, what="the title to reach the index")
                worker.wait_for_log("requeued 1 author notification(s)", timeout=30)
