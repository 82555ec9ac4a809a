import factory
from factory.django import DjangoModelFactory

from apps.users.models import User

DEFAULT_PASSWORD = "correct horse battery staple"


class UserFactory(DjangoModelFactory[User]):
    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password(DEFAULT_PASSWORD)

    class Meta:
        model = User
        skip_postgeneration_save = True
