import re
from datetime import datetime, tzinfo
from functools import cached_property
from typing import Any

from django.urls import reverse
from django.utils import timezone
from rest_framework import serializers

from apps.articles.autocomplete import QUERY_MAX_LENGTH
from apps.articles.models import Article
from apps.articles.selectors import PUBLIC_ORDERINGS
from apps.users.models import User


class AuthorSerializer(serializers.ModelSerializer[User]):
    # Authors' emails are private; the public sees a name.
    name = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "name"]

    def get_name(self, user: User) -> str:
        return author_name(user)


def author_name(user: User) -> str:
    return user.get_full_name() or f"Author {user.pk}"


def _drf_datetime(value: datetime | None, zone: tzinfo) -> str | None:
    """What DRF's DateTimeField gives with the default format: in `zone`, ISO 8601, Z for UTC."""
    if value is None:
        return None
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# A slug that reverse() would put in the URL unchanged.
_PLAIN_SLUG = re.compile(r"[-a-zA-Z0-9_]+")
_SLUG_PLACEHOLDER = "slug-placeholder"


class ArticleSerializer(serializers.ModelSerializer[Article]):
    author = AuthorSerializer(read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = Article
        fields = [
            "id",
            "title",
            "slug",
            "body",
            "author",
            "status",
            "publish_at",
            "published_at",
            "created_at",
            "updated_at",
            "url",
        ]
        read_only_fields = fields

    def get_url(self, article: Article) -> str:
        return article.get_absolute_url()

    def to_representation(self, article: Article) -> dict[str, Any]:
        """The same dict as ModelSerializer's, built directly: lists serialise 20+ of these per miss.

        DRF's generic path walks a field object per attribute and reverses a URL per article, on
        every article of every uncached page. A test compares the two on articles in every state,
        so a field added to Meta.fields without being added here fails it.
        """
        author = article.author
        zone = self._zone
        return {
            "id": article.pk,
            "title": article.title,
            "slug": article.slug,
            "body": article.body,
            "author": {"id": author.pk, "name": author_name(author)},
            "status": article.status,
            "publish_at": _drf_datetime(article.publish_at, zone),
            "published_at": _drf_datetime(article.published_at, zone),
            "created_at": _drf_datetime(article.created_at, zone),
            "updated_at": _drf_datetime(article.updated_at, zone),
            "url": self._detail_url(article),
        }

    def generic_representation(self, article: Article) -> dict[str, Any]:
        """ModelSerializer's own representation: what to_representation must equal."""
        return dict(super().to_representation(article))

    @cached_property
    def _zone(self) -> tzinfo:
        # DRF's fields read the current time zone per value; once per serializer is enough.
        return timezone.get_current_timezone()

    @cached_property
    def _url_template(self) -> str:
        # Reversed once per serializer (a list shares one child): the script prefix is per request.
        return reverse("articles:detail", kwargs={"slug": _SLUG_PLACEHOLDER})

    def _detail_url(self, article: Article) -> str:
        if not _PLAIN_SLUG.fullmatch(article.slug):
            return article.get_absolute_url()
        return self._url_template.replace(_SLUG_PLACEHOLDER, article.slug)


class ArticleWriteSerializer(serializers.Serializer[Article]):
    title = serializers.CharField(max_length=200)
    body = serializers.CharField(allow_blank=True, required=False, default="")
    slug = serializers.SlugField(max_length=220, required=False)


class ArticleUpdateSerializer(serializers.Serializer[Article]):
    title = serializers.CharField(max_length=200, required=False)
    body = serializers.CharField(allow_blank=True, required=False)
    slug = serializers.SlugField(max_length=220, required=False)


class ArticleScheduleSerializer(serializers.Serializer[Article]):
    publish_at = serializers.DateTimeField()

    def validate_publish_at(self, value):
        if value <= timezone.now():
            raise serializers.ValidationError("Must be in the future; to publish now, use publish.")
        return value


class ArticleListQuerySerializer(serializers.Serializer[dict]):
    author = serializers.IntegerField(required=False, min_value=1)
    published_after = serializers.DateField(required=False)
    published_before = serializers.DateField(required=False)
    ordering = serializers.ChoiceField(
        choices=list(PUBLIC_ORDERINGS), required=False, default="-published_at"
    )

    def validate(self, attrs):
        after, before = attrs.get("published_after"), attrs.get("published_before")
        if after and before and after > before:
            raise serializers.ValidationError({"published_before": ["Must not be before published_after."]})
        return attrs


class AutocompleteQuerySerializer(serializers.Serializer[dict]):
    q = serializers.CharField(
        max_length=QUERY_MAX_LENGTH,
        trim_whitespace=True,
        help_text="Title prefix, any case; not blank once leading and trailing spaces are removed.",
    )


class SuggestionSerializer(serializers.Serializer[dict]):
    title = serializers.CharField()
    slug = serializers.CharField()


class AutocompleteResponseSerializer(serializers.Serializer[dict]):
    results = SuggestionSerializer(many=True)
    served_from = serializers.ChoiceField(choices=["redis", "database"])
