import pytest
from django.urls import reverse


@pytest.mark.django_db
def test_admin_login_page_renders_under_the_content_security_policy(client):
    response = client.get(reverse("admin:login"))
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    # Nothing inline for the policy to block: every script is loaded from our origin.
    assert b"<script>" not in response.content


def test_baseline_security_headers_are_set(client):
    response = client.get(reverse("home"))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
