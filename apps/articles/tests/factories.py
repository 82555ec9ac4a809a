import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from apps.articles.models import Article
from apps.users.tests.factories import UserFactory


class ArticleFactory(DjangoModelFactory[Article]):
    title = factory.Sequence(lambda n: f"Article number {n}")
    slug = factory.Sequence(lambda n: f"article-number-{n}")
    body = factory.Faker("paragraph")
    author = factory.SubFactory(UserFactory)
    status = Article.Status.DRAFT

    class Meta:
        model = Article

    class Params:
        published = factory.Trait(
            status=Article.Status.PUBLISHED,
            published_at=factory.LazyFunction(timezone.now),
            author_notified_at=factory.LazyFunction(timezone.now),
            # An email is claimed before it is sent: a test that unsets the sent mark unsets both.
            author_notification_claimed_at=factory.SelfAttribute("author_notified_at"),
        )
