import pytest
from django.db import IntegrityError, transaction

from apps.users.models import User

pytestmark = pytest.mark.django_db


def test_users_log_in_by_email_and_the_address_is_stored_in_lower_case():
    user = User.objects.create_user("Ada@EXAMPLE.com", "s3cret-pass")
    assert user.email == "ada@example.com"
    assert user.check_password("s3cret-pass")
    assert not user.is_staff


def test_the_natural_key_ignores_case():
    user = User.objects.create_user("grace@example.com", "s3cret-pass")
    assert User.objects.get_by_natural_key("Grace@Example.COM") == user


def test_a_changed_address_is_stored_in_lower_case():
    user = User.objects.create_user("grace@example.com", "s3cret-pass")
    user.email = "Grace.Hopper@Example.com"
    user.save()
    user.refresh_from_db()
    assert user.email == "grace.hopper@example.com"


def test_a_second_account_differing_only_by_case_cannot_be_created():
    User.objects.create_user("ada@example.com", "s3cret-pass")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user("ADA@example.com", "other-pass")
    assert User.objects.count() == 1


def test_the_database_refuses_an_address_changed_to_a_case_variant_behind_the_models_back():
    User.objects.create_user("ada@example.com", "s3cret-pass")
    other = User.objects.create_user("grace@example.com", "s3cret-pass")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=other.pk).update(email="Ada@example.com")
    assert User.objects.get(pk=other.pk).email == "grace@example.com"


def test_superuser_gets_staff_and_superuser_flags():
    admin = User.objects.create_superuser("root@example.com", "s3cret-pass")
    assert admin.is_staff
    assert admin.is_superuser


def test_a_user_needs_an_email():
    with pytest.raises(ValueError, match="email"):
        User.objects.create_user("", "x")
