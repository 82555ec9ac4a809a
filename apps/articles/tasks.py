"""Article tasks. Each takes ids, reads fresh state, and is safe to run twice."""

import logging

import redis
from celery import shared_task

from apps.articles import autocomplete, services
from apps.articles.models import Article

logger = logging.getLogger(__name__)

# Redis or SMTP hiccups are worth a few retries; anything else is a bug and should surface.
TRANSIENT_ERRORS = (redis.RedisError, ConnectionError, TimeoutError, OSError)


@shared_task(autoretry_for=TRANSIENT_ERRORS, retry_backoff=True, retry_jitter=True, max_retries=5)
def index_article(article_id: int) -> None:
    """Make the autocomplete index match the article's current state (or its absence)."""
    article = Article.objects.filter(pk=article_id).first()
    if article is None:
        autocomplete.remove_article(article_id)
    else:
        autocomplete.index_article(article)


@shared_task(autoretry_for=TRANSIENT_ERRORS, retry_backoff=True, retry_jitter=True, max_retries=5)
def notify_author_published(article_id: int) -> bool:
    return services.article_notify_author(article_id=article_id)


@shared_task
def publish_due_articles() -> int:
    """Replaces the cron job: publishes scheduled articles whose time has come."""
    published = services.articles_publish_due()
    if published:
        logger.info("published %d scheduled article(s)", published)
    return published


@shared_task
def requeue_unnotified_articles() -> int:
    """The sweep for notifications whose message was lost while the broker was down."""
    requeued = services.articles_requeue_unnotified()
    if requeued:
        logger.warning("requeued %d author notification(s) that never reached the broker", requeued)
    return requeued
