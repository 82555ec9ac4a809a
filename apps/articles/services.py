"""Writes on articles. Each owns its transaction and queues follow-up work only once committed."""

import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify

from apps.articles import cache as article_cache
from apps.articles import selectors
from apps.articles.models import Article
from apps.core.models import DeadLetter
from apps.core.tasks import enqueue
from apps.users.models import User

logger = logging.getLogger(__name__)

SLUG_MAX_LENGTH = 200


def _slug_candidates(title: str) -> list[str]:
    base = slugify(title)[:SLUG_MAX_LENGTH].strip("-") or "article"
    return [base] + [f"{base}-{secrets.token_hex(3)}" for _ in range(5)]


def _after_change(article_id: int, *, published_now: bool = False) -> None:
    """Follow-up work for a committed change: the index, the response cache, the author."""
    from apps.articles import tasks

    transaction.on_commit(article_cache.invalidate)
    enqueue(tasks.index_article, article_id)
    if published_now:
        enqueue(tasks.notify_author_published, article_id)


def article_changed_elsewhere(*, article_id: int) -> None:
    """The follow-up work for a change saved outside these services (the admin's change form)."""
    _after_change(article_id)


def author_renamed(*, author_id: int) -> None:
    """Cached pages show authors' names: a rename invalidates them once the change is committed."""
    if Article.objects.filter(author_id=author_id).exists():
        transaction.on_commit(article_cache.invalidate)


@transaction.atomic
def article_create(*, author: User, title: str, body: str = "", slug: str | None = None) -> Article:
    """Create a draft. Without a slug, one is made from the title and kept unique."""
    candidates = [slug] if slug else _slug_candidates(title)
    for candidate in candidates:
        if Article.objects.filter(slug=candidate).exists():
            continue
        try:
            with transaction.atomic():
                article = Article.objects.create(author=author, title=title, body=body, slug=candidate)
        except IntegrityError:
            continue  # Taken by a concurrent request between the check and the insert.
        _after_change(article.pk)
        return article
    raise ValidationError({"slug": ["An article with this slug already exists."]})


@transaction.atomic
def article_update(
    *, article: Article, title: str | None = None, body: str | None = None, slug: str | None = None
) -> Article:
    changed = []
    for field, value in (("title", title), ("body", body), ("slug", slug)):
        if value is not None and getattr(article, field) != value:
            setattr(article, field, value)
            changed.append(field)
    if changed:
        if "slug" in changed and Article.objects.filter(slug=article.slug).exclude(pk=article.pk).exists():
            raise ValidationError({"slug": ["An article with this slug already exists."]})
        article.save(update_fields=[*changed, "updated_at"])
        _after_change(article.pk)
    return article


@transaction.atomic
def article_publish(*, article: Article, at: datetime | None = None) -> Article:
    """Publish now (or at a past moment `at`). Publishing a published article changes nothing."""
    if article.is_published:
        return article
    article.status = Article.Status.PUBLISHED
    article.published_at = at or timezone.now()
    article.publish_at = None
    article.save(update_fields=["status", "published_at", "publish_at", "updated_at"])
    _after_change(article.pk, published_now=article.author_notification_claimed_at is None)
    return article


@transaction.atomic
def article_schedule(*, article: Article, publish_at: datetime) -> Article:
    if publish_at <= timezone.now():
        raise ValidationError({"publish_at": ["Must be in the future; to publish now, use publish."]})
    if article.is_published:
        raise ValidationError({"status": ["The article is already published; unpublish it first."]})
    article.status = Article.Status.SCHEDULED
    article.publish_at = publish_at
    article.save(update_fields=["status", "publish_at", "updated_at"])
    _after_change(article.pk)
    return article


@transaction.atomic
def article_unpublish(*, article: Article) -> Article:
    if article.status == Article.Status.DRAFT:
        return article
    article.status = Article.Status.DRAFT
    article.published_at = None
    article.publish_at = None
    article.save(update_fields=["status", "published_at", "publish_at", "updated_at"])
    _after_change(article.pk)
    return article


@transaction.atomic
def article_delete(*, article: Article) -> None:
    article_id = article.pk
    article.delete()
    _after_change(article_id)


def _publish_if_still_due(*, article_id: int, now: datetime) -> bool:
    """One conditional UPDATE: of any number of concurrent callers, exactly one publishes."""
    with transaction.atomic():
        published = Article.objects.filter(
            pk=article_id, status=Article.Status.SCHEDULED, publish_at__lte=now
        ).update(
            status=Article.Status.PUBLISHED, published_at=F("publish_at"), publish_at=None, updated_at=now
        )
        if published:
            _after_change(article_id, published_now=True)
    return bool(published)


def articles_publish_due(*, now: datetime | None = None, limit: int = 1_000) -> int:
    """Publish every scheduled article whose time has come; returns how many this call published."""
    now = now or timezone.now()
    due_ids = list(selectors.article_list_due(now=now).values_list("id", flat=True)[:limit])
    return sum(_publish_if_still_due(article_id=article_id, now=now) for article_id in due_ids)


def article_notify_author(*, article_id: int) -> bool:
    """Email the author that the article is live, at most once. Returns whether an email was sent.

    Claim before send: a later run (a redelivery, the sweep) finds the claim and sends nothing. A
    send that raises releases the claim for the retry; a worker killed while sending leaves a claim
    with no sent mark, which the next run logs instead of sending (the mail may have gone out).
    """
    claimed = Article.objects.filter(
        pk=article_id, status=Article.Status.PUBLISHED, author_notification_claimed_at__isnull=True
    ).update(author_notification_claimed_at=timezone.now())
    if not claimed:
        cut_short = Article.objects.filter(
            pk=article_id, author_notification_claimed_at__isnull=False, author_notified_at__isnull=True
        ).values_list("author_notification_claimed_at", flat=True)
        for claimed_at in cut_short:
            logger.error(
                "not emailing the author of article %d: a send claimed at %s never recorded its end "
                "(a worker died while sending?); it may have gone out",
                article_id,
                claimed_at,
            )
        return False
    article = Article.objects.select_related("author").get(pk=article_id)
    url = settings.SITE_URL.rstrip("/") + article.get_absolute_url()
    try:
        send_mail(
            subject=f"Published: {article.title}",
            message=f"Your article “{article.title}” is now published at {url}\n",
            from_email=None,
            recipient_list=[article.author.email],
        )
    except BaseException:
        Article.objects.filter(pk=article_id).update(author_notification_claimed_at=None)
        raise
    Article.objects.filter(pk=article_id).update(author_notified_at=timezone.now())
    return True


def articles_requeue_unnotified(*, older_than_seconds: int | None = None) -> int:
    """The sweep: queue again the notifications whose message never reached the broker.

    The index entry was queued with the notification and lost with it, so it is queued again too
    (index_article is idempotent: an entry that did arrive is rewritten as it was).
    """
    from apps.articles import tasks

    grace = settings.ARTICLES_NOTIFY_GRACE_SECONDS if older_than_seconds is None else older_than_seconds
    cutoff = timezone.now() - timedelta(seconds=grace)
    # A notification that failed for good waits in the dead letters for an operator: queued again
    # here, it would fail and add a dead letter every sweep.
    dead_lettered = {
        args[0]
        for args in DeadLetter.objects.filter(
            task_name=tasks.notify_author_published.name, rerun_at__isnull=True
        ).values_list("args", flat=True)
        if args
    }
    article_ids = [
        article_id
        for article_id in selectors.article_list_unnotified(published_before=cutoff).values_list(
            "id", flat=True
        )
        if article_id not in dead_lettered
    ]
    for article_id in article_ids:
        enqueue(tasks.index_article, article_id)
        enqueue(tasks.notify_author_published, article_id)
    return len(article_ids)
