"""Article tasks. Each takes ids, reads fresh state, and is safe to run twice."""

import logging

from django.conf import settings

from apps.articles import autocomplete, services
from apps.articles.models import Article
from apps.core.tasks import house_task, once_per_slot

logger = logging.getLogger(__name__)


@house_task
def index_article(article_id: int) -> None:
    """Make the autocomplete index match the article's current state (or its absence)."""
    autocomplete.index_article(article_id, Article.objects.filter(pk=article_id).first())


@house_task
def notify_author_published(article_id: int) -> bool:
    return services.article_notify_author(article_id=article_id)


def _schedule_interval(entry: str) -> float:
    return float(settings.CELERY_BEAT_SCHEDULE[entry]["schedule"])


@house_task
@once_per_slot(seconds=lambda: _schedule_interval("articles.publish-due"))
def publish_due_articles() -> int:
    """Replaces the cron job: publishes scheduled articles whose time has come.

    Two beats would queue this twice a minute: the slot lock runs it once, and the conditional
    UPDATE in the service publishes each article once even if two runs overlap anyway.
    """
    published = services.articles_publish_due()
    if published:
        logger.info("published %d scheduled article(s)", published)
    return published


@house_task
@once_per_slot(seconds=lambda: _schedule_interval("articles.requeue-unnotified"))
def requeue_unnotified_articles() -> int:
    """The sweep for notifications whose message was lost while the broker was down."""
    requeued = services.articles_requeue_unnotified()
    if requeued:
        logger.warning(
            "requeued %d author notification(s) that never reached the broker, and their index entries",
            requeued,
        )
    return requeued


@house_task
@once_per_slot(seconds=autocomplete.heal_interval, name="articles.rebuild-autocomplete")
def rebuild_autocomplete_index() -> int:
    """Queued by a lookup that found the index missing (a Redis restarted empty): at most one per slot."""
    count = autocomplete.rebuild_from_database()
    logger.warning("autocomplete index rebuilt: %d published title(s)", count)
    return count


@house_task
@once_per_slot(seconds=autocomplete.heal_interval)
def sweep_autocomplete_index() -> str:
    """The sweep for index updates whose message was lost (the broker was down when an author
    edited): reindexes what changed since the last sweep, rebuilds a missing or mismatched index."""
    outcome = autocomplete.sweep_index()
    logger.info("autocomplete sweep: %s", outcome)
    return outcome
