"""The author's "published" email under a worker killed mid-task: sent once, never twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import redis as redis_py
from django.conf import settings

from apps.articles.models import Article
from apps.articles.tests.factories import ArticleFactory
from tests.support.processes import celery, celery_env, publishing_to
from tests.support.redis_servers import RedisServer, redis_server
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults]


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def _env(redis: RedisServer, **extra: str) -> dict[str, str]:
    return celery_env(
        database=settings.DATABASES["default"],
        redis_port=redis.port,
        CACHE_KEY_PREFIX=f"task-faults-{redis.port}",
        **extra,
    )


def effects_store(redis: RedisServer) -> redis_py.Redis:
    """Where the mail backend of tests/faults/tasks.py records what it sent."""
    return redis_py.Redis.from_url(redis.url(2))


def _report(**figures: object) -> None:
    print("figures: " + ", ".join(f"{name}={value}" for name, value in figures.items()))


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_between_sending_the_email_and_recording_it_does_not_send_it_twice(
    redis: RedisServer, log_dir: Path
):
    """Broke: the worker's pool process, killed with SIGKILL right after the author's "published"
    email went out and before the send was recorded.
    Saw: the task redelivered at once (task_reject_on_worker_lost); the second run found the send
    claimed and logged at ERROR that it may have gone out instead of sending again. The next
    article's email was sent and recorded as usual.
    Lost: nothing; run twice: the task, harmlessly: each author got exactly one email.
    """
    from apps.articles.tasks import notify_author_published

    store = effects_store(redis)
    cut_short = ArticleFactory(published=True, author_notified_at=None)
    normal = ArticleFactory(published=True, author_notified_at=None)
    env = _env(redis, DJANGO_SETTINGS_MODULE="tests.faults.mail_settings")
    with celery("worker", env, log_dir, "--concurrency=1") as worker, publishing_to(redis.url(1)):
        notify_author_published.delay(cut_short.pk)
        worker.wait_for_log(f"not emailing the author of article {cut_short.pk}", timeout=60)
        notify_author_published.delay(normal.pk)
        wait_until(
            lambda: Article.objects.filter(pk=normal.pk, author_notified_at__isnull=False).exists(),
            timeout=30,
            what="the next email to be sent and recorded",
        )
        log = worker.log()
    mails = {
        article.author.email: cast(list[bytes], store.lrange(f"mail:{article.author.email}", 0, -1))
        for article in (cut_short, normal)
    }
    cut_short.refresh_from_db()
    _report(
        tasks=2,
        emails_sent=sum(len(sent) for sent in mails.values()),
        emailed_twice=sum(1 for sent in mails.values() if len(sent) > 1),
        lost=0,
    )
    assert [len(sent) for sent in mails.values()] == [1, 1]
    assert cut_short.author_notification_claimed_at is not None
    assert cut_short.author_notified_at is None
    assert "SIGKILL" in log or "signal 9" in log
