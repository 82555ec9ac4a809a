from datetime import timedelta

import pytest
from django.utils import timezone

from apps.articles.api.serializers import ArticleSerializer
from apps.articles.models import Article
from apps.articles.tests.factories import ArticleFactory
from apps.users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "state",
    [
        {"published": True},
        {"status": Article.Status.DRAFT},
        {"status": Article.Status.SCHEDULED, "publish_at": timezone.now() + timedelta(days=1)},
    ],
)
@pytest.mark.parametrize("named", [True, False])
def test_the_hand_built_representation_equals_drfs_own(state, named):
    author = UserFactory(first_name="Ada" if named else "", last_name="Lovelace" if named else "")
    created = ArticleFactory(author=author, **state)
    # Microseconds, as a row read back carries.
    Article.objects.filter(pk=created.pk).update(created_at=timezone.now().replace(microsecond=123456))
    article = Article.objects.select_related("author").get(pk=created.pk)

    serializer = ArticleSerializer()
    assert serializer.to_representation(article) == serializer.generic_representation(article)


def test_a_list_serialises_every_article_the_generic_way(settings):
    settings.TIME_ZONE = "Europe/Paris"
    articles = ArticleFactory.create_batch(3, published=True)
    rows = list(Article.objects.select_related("author").filter(pk__in=[a.pk for a in articles]))
    fast = ArticleSerializer(rows, many=True).data
    assert [dict(row) for row in fast] == [ArticleSerializer().generic_representation(row) for row in rows]
