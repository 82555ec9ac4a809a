"""Articles: the reference domain app. Writes go through services.py, reads through selectors.py."""

from django.conf import settings
from django.db import models
from django.urls import reverse

from apps.core.models import TimeStampedModel


class ArticleQuerySet(models.QuerySet["Article"]):
    def published(self) -> "ArticleQuerySet":
        return self.filter(status=Article.Status.PUBLISHED)


class Article(TimeStampedModel):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        PUBLISHED = "published", "Published"

    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=220, unique=True)
    body = models.TextField(blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="articles")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    publish_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    # The publication email: claimed (committed) before it is sent, marked once it went out. The
    # sweep finds the ones never claimed; a claim without a sent mark is a send that was cut short.
    author_notification_claimed_at = models.DateTimeField(null=True, blank=True)
    author_notified_at = models.DateTimeField(null=True, blank=True)

    objects = ArticleQuerySet.as_manager()

    class Meta:
        ordering = ["-published_at", "-id"]
        indexes = [
            # The public list: published, newest first (also serves the date filters).
            models.Index(fields=["status", "-published_at", "-id"], name="article_public_list"),
            # Beat's due-article scan.
            models.Index(fields=["status", "publish_at"], name="article_due_scan"),
            # The author filter, in the public list's order.
            models.Index(fields=["author", "status", "-published_at", "-id"], name="article_by_author"),
            # The list ordered by title (either way).
            models.Index(fields=["status", "title", "id"], name="article_by_title"),
            # The admin's changelist: every state, newest first.
            models.Index(fields=["-published_at", "-id"], name="article_newest"),
            # The autocomplete sweep: what changed since its last run.
            models.Index(fields=["updated_at"], name="article_updated"),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("articles:detail", kwargs={"slug": self.slug})

    @property
    def is_published(self) -> bool:
        return self.status == self.Status.PUBLISHED
