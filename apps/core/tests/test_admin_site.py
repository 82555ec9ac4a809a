"""The admin carries the project's name on every page, the sign-in page included."""

import pytest
from django.urls import reverse

from apps.core.http.navigation import site_name

pytestmark = pytest.mark.django_db


def test_the_sign_in_page_names_the_project_not_the_host(client):
    # Django's LoginView puts the requested Host in the context as `site_name`; the admin's
    # header and title must not take the project's name from there.
    response = client.get(reverse("admin:login"), HTTP_HOST="127.0.0.1")
    content = response.content.decode()
    assert response.status_code == 200
    assert f"{site_name()} administration" in content
    assert f"| {site_name()} admin</title>" in content
    assert "127.0.0.1" not in content
