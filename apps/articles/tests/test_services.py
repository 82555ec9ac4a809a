import smtplib
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.mail.backends import locmem
from django.utils import timezone

from apps.articles import autocomplete, services, tasks
from apps.articles.models import Article
from apps.articles.tests.factories import ArticleFactory
from apps.core.models import DeadLetter
from apps.users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_create_makes_a_unique_slug_from_the_title():
    author = UserFactory()
    first = services.article_create(author=author, title="Hello, World!")
    second = services.article_create(author=author, title="Hello world")
    assert first.slug == "hello-world"
    assert second.slug.startswith("hello-world-")
    assert first.status == Article.Status.DRAFT


def test_create_with_a_taken_slug_is_a_validation_error():
    ArticleFactory(slug="taken")
    with pytest.raises(ValidationError) as error:
        services.article_create(author=UserFactory(), title="x", slug="taken")
    assert "slug" in error.value.message_dict


def test_publishing_twice_publishes_once_and_emails_the_author_once(django_capture_on_commit_callbacks):
    article = ArticleFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.article_publish(article=article)
    first_published_at = article.published_at
    with django_capture_on_commit_callbacks(execute=True):
        services.article_publish(article=article)
    article.refresh_from_db()
    assert article.status == Article.Status.PUBLISHED
    assert article.published_at == first_published_at
    assert [message.to for message in mail.outbox] == [[article.author.email]]
    assert article.author_notified_at is not None


def test_a_send_that_fails_releases_its_claim_so_the_retry_sends_it(settings):
    # SMTP is the one thing here that cannot run for real: a backend that refuses once stands in.
    settings.EMAIL_BACKEND = "apps.articles.tests.test_services.RefusingOnceBackend"
    article = ArticleFactory(published=True, author_notified_at=None)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        services.article_notify_author(article_id=article.pk)
    article.refresh_from_db()
    assert (article.author_notification_claimed_at, article.author_notified_at) == (None, None)
    assert services.article_notify_author(article_id=article.pk) is True
    assert services.article_notify_author(article_id=article.pk) is False
    article.refresh_from_db()
    assert article.author_notified_at is not None
    assert RefusingOnceBackend.sent == [[article.author.email]]


def test_a_send_cut_short_is_never_repeated_and_is_logged(caplog):
    article = ArticleFactory(published=True, author_notified_at=None)
    # What a worker killed between sending and recording it leaves behind.
    Article.objects.filter(pk=article.pk).update(author_notification_claimed_at=timezone.now())
    assert services.article_notify_author(article_id=article.pk) is False
    assert mail.outbox == []
    assert f"not emailing the author of article {article.pk}" in caplog.text
    assert services.articles_requeue_unnotified(older_than_seconds=0) == 0


class RefusingOnceBackend(locmem.EmailBackend):
    sent: list[list[str]] = []
    refused = False

    def send_messages(self, messages):
        if not RefusingOnceBackend.refused:
            RefusingOnceBackend.refused = True
            raise smtplib.SMTPServerDisconnected("the mail server went away")
        RefusingOnceBackend.sent.extend(message.to for message in messages)
        return len(messages)


def test_scheduling_in_the_past_is_refused():
    with pytest.raises(ValidationError) as error:
        services.article_schedule(article=ArticleFactory(), publish_at=timezone.now() - timedelta(minutes=1))
    assert "publish_at" in error.value.message_dict


def test_due_articles_are_published_exactly_once_at_their_scheduled_time(django_capture_on_commit_callbacks):
    due = ArticleFactory(status=Article.Status.SCHEDULED, publish_at=timezone.now() - timedelta(minutes=5))
    later = ArticleFactory(status=Article.Status.SCHEDULED, publish_at=timezone.now() + timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        first_run = services.articles_publish_due()
        second_run = services.articles_publish_due()
    assert (first_run, second_run) == (1, 0)
    due.refresh_from_db()
    later.refresh_from_db()
    assert due.status == Article.Status.PUBLISHED
    assert due.published_at is not None
    assert later.status == Article.Status.SCHEDULED
    assert len(mail.outbox) == 1


def test_unpublish_returns_the_article_to_draft():
    article = ArticleFactory(published=True)
    services.article_unpublish(article=article)
    article.refresh_from_db()
    assert (article.status, article.published_at) == (Article.Status.DRAFT, None)


def test_the_sweep_requeues_notifications_that_never_reached_the_broker(django_capture_on_commit_callbacks):
    lost = ArticleFactory(published=True, author_notified_at=None)
    Article.objects.filter(pk=lost.pk).update(published_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        requeued = services.articles_requeue_unnotified()
    assert requeued == 1
    assert [message.to for message in mail.outbox] == [[lost.author.email]]
    with django_capture_on_commit_callbacks(execute=True):
        assert services.articles_requeue_unnotified() == 0


def test_the_sweep_leaves_a_notification_that_failed_for_good_to_its_dead_letter(
    django_capture_on_commit_callbacks,
):
    failed = ArticleFactory(published=True, author_notified_at=None)
    Article.objects.filter(pk=failed.pk).update(published_at=timezone.now() - timedelta(hours=1))
    DeadLetter.objects.create(
        task_id="notify-failed-for-good",
        task_name=tasks.notify_author_published.name,
        args=[failed.pk],
        kwargs={},
        error="SMTPAuthenticationError",
        attempts=1,
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert services.articles_requeue_unnotified() == 0
    assert mail.outbox == []


def test_the_sweep_also_indexes_the_titles_whose_index_task_was_lost_with_the_notification(
    django_capture_on_commit_callbacks,
):
    lost = ArticleFactory(title="Lost with its notification", published=True, author_notified_at=None)
    Article.objects.filter(pk=lost.pk).update(published_at=timezone.now() - timedelta(hours=1))
    assert autocomplete.search("Lost with its notification") == ([], "redis")
    with django_capture_on_commit_callbacks(execute=True):
        services.articles_requeue_unnotified()
    suggestions, source = autocomplete.search("Lost with its notification")
    assert (source, [suggestion.slug for suggestion in suggestions]) == ("redis", [lost.slug])
