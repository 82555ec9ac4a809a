"""Reads on articles. Each returns a queryset with its joins applied, so no caller can forget them."""

from datetime import date, datetime, time, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.articles.models import Article
from apps.users.models import User

PUBLIC_ORDERINGS = {
    "-published_at": ("-published_at", "-id"),
    "published_at": ("published_at", "id"),
    "title": ("title", "id"),
    "-title": ("-title", "-id"),
}


def article_list_published(
    *,
    author_id: int | None = None,
    published_after: date | None = None,
    published_before: date | None = None,
    ordering: str = "-published_at",
) -> QuerySet[Article]:
    articles = Article.objects.published().select_related("author")
    if author_id is not None:
        articles = articles.filter(author_id=author_id)
    # Days as a range of instants, not published_at__date: a range reads the index, a date cast of
    # each row cannot.
    if published_after is not None:
        articles = articles.filter(published_at__gte=_start_of(published_after))
    if published_before is not None:
        articles = articles.filter(published_at__lt=_start_of(published_before + timedelta(days=1)))
    return articles.order_by(*PUBLIC_ORDERINGS[ordering])


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def article_list_for_author(*, author: User) -> QuerySet[Article]:
    return Article.objects.filter(author=author).select_related("author").order_by("-updated_at", "-id")


def article_visible_to(*, user: User | None) -> QuerySet[Article]:
    """Published articles, plus the user's own in any state."""
    visible = Q(status=Article.Status.PUBLISHED)
    if user is not None:
        visible |= Q(author=user)
    return Article.objects.filter(visible).select_related("author")


def article_list_due(*, now) -> QuerySet[Article]:
    return Article.objects.filter(status=Article.Status.SCHEDULED, publish_at__lte=now).order_by("publish_at")


def article_list_by_title_prefix(*, prefix: str, limit: int) -> QuerySet[Article]:
    return Article.objects.published().filter(title__istartswith=prefix).order_by("title", "id")[:limit]


def article_list_unnotified(*, published_before) -> QuerySet[Article]:
    return Article.objects.published().filter(
        author_notification_claimed_at__isnull=True, published_at__lt=published_before
    )


def article_list_indexable() -> QuerySet[Article]:
    """What the autocomplete index holds: every published article, the fields its entries need."""
    return Article.objects.published().only("id", "title", "slug", "status").order_by("id")


def article_list_changed_since(*, since: datetime) -> QuerySet[Article]:
    """Articles saved since `since`, in any state (an unpublished one leaves the index); by the
    updated_at index."""
    return Article.objects.filter(updated_at__gte=since).only("id", "title", "slug", "status").order_by("id")
