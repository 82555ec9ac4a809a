import pytest

from apps.users.models import User

pytestmark = pytest.mark.django_db


def test_users_log_in_by_email_and_the_domain_is_normalised():
    user = User.objects.create_user("Ada@EXAMPLE.com", "s3cret-pass")
    assert user.email == "Ada@example.com"
    assert user.check_password("s3cret-pass")
    assert not user.is_staff


def test_superuser_gets_staff_and_superuser_flags():
    admin = User.objects.create_superuser("root@example.com", "s3cret-pass")
    assert admin.is_staff
    assert admin.is_superuser


def test_a_user_needs_an_email():
    with pytest.raises(ValueError, match="email"):
        User.objects.create_user("", "x")
