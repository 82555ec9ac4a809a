from datetime import date, timedelta

from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone
from rest_framework import serializers

from apps.articles.autocomplete import QUERY_MAX_LENGTH
from apps.articles.models import Article
from apps.articles.selectors import PUBLIC_ORDERINGS
from apps.users.models import User

DAY_RANGE = [MinValueValidator(date.min + timedelta(days=1)), MaxValueValidator(date.max - timedelta(days=1))]


class AuthorSerializer(serializers.ModelSerializer[User]):
    # Authors' emails are private; the public sees a name.
    name = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "name"]

    def get_name(self, user: User) -> str:
        return user.get_full_name() or f"Author {user.pk}"


class ArticleSerializer(serializers.ModelSerializer[Article]):
    author = AuthorSerializer(read_only=True)
    # A method field, not CharField(source="get_absolute_url"): DRF inspects a callable source's
    # signature again for every row it serializes.
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
    # A 64-bit id at most: SQLite cannot bind a larger integer (an OverflowError, a 500).
    author = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    # A day's bounds are instants in TIME_ZONE: the calendar's first and last days have one outside
    # what Python's datetime holds (an OverflowError, a 500) in a zone away from UTC.
    published_after = serializers.DateField(required=False, validators=DAY_RANGE)
    published_before = serializers.DateField(required=False, validators=DAY_RANGE)
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
