"""Hostile input, in process: a clear 4xx in the one error shape, never a 5xx, no ERROR log line,
nothing stored, and nothing one client sends changes what another is served.

The same classes of input against gunicorn with production settings: tests/test_hostile_input.py.
"""

import base64
import logging
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from apps.articles.models import Article
from apps.articles.tests.factories import ArticleFactory
from apps.core.tests.test_health import _redis_cache
from apps.users.tests.factories import UserFactory
from tests.support.http import api_error
from tests.support.net import closed_port

pytestmark = pytest.mark.django_db

# Past the recursion limit of `json` on every supported Python (3.13 parses a thousand levels).
DEEP_JSON = "[" * 100_000 + "]" * 100_000
NUL_SESSION_COOKIE = 'sessionid="aaaa\\000bbbb"'


@pytest.fixture
def caplog_warnings(caplog):
    caplog.set_level(logging.INFO)
    return caplog


def _no_error_lines(caplog) -> None:
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert not errors, [record.getMessage() for record in errors]
    assert not [record for record in caplog.records if record.exc_info], "a traceback was logged"


@pytest.fixture
def author_token() -> tuple[str, Article]:
    author = UserFactory.create()
    article = ArticleFactory.create(author=author)
    return Token.objects.create(user=author).key, article


# 1 and 3: NUL and other control characters where they can never be valid.


@pytest.mark.parametrize("path", ["/api/v1/articles/", "/api/v1/users/me/", "/articles/", "/"])
def test_a_nul_in_the_session_cookie_is_400_on_every_path(client, caplog_warnings, path):
    response = client.get(path, HTTP_COOKIE=NUL_SESSION_COOKIE)
    if path.startswith("/api/"):
        assert api_error(response, 400)["code"] == "bad_request"
    else:
        assert response.status_code == 400
        assert response["Content-Type"].startswith("text/html")
    _no_error_lines(caplog_warnings)
    assert any(record.levelno == logging.WARNING for record in caplog_warnings.records)


def test_a_control_character_in_any_cookie_is_400_and_a_tab_is_not(client):
    assert client.get("/api/v1/articles/", HTTP_COOKIE='theme="a\\001b"').status_code == 400
    assert client.get("/api/v1/articles/", HTTP_COOKIE="theme=a\tb").status_code == 200


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("patch", "", {"title": "changed"}),
        ("delete", "", None),
        ("post", "publish/", None),
        ("post", "unpublish/", None),
        ("post", "schedule/", {"publish_at": "2999-01-01T00:00:00Z"}),
    ],
)
def test_a_nul_in_an_api_path_is_400_and_changes_nothing(author_token, caplog_warnings, method, suffix, body):
    token, _ = author_token
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token}")
    before = list(Article.objects.values())
    response = getattr(client, method)(f"/api/v1/articles/%00/{suffix}", body, format="json")
    assert api_error(response, 400)["code"] == "bad_request"
    assert list(Article.objects.values()) == before
    _no_error_lines(caplog_warnings)


def test_a_nul_or_newline_in_a_page_path_is_the_400_page(client, caplog_warnings):
    for path in ("/articles/%00/", "/articles/a%0Ab/"):
        response = client.get(path)
        assert response.status_code == 400
        assert response["Content-Type"].startswith("text/html")
    _no_error_lines(caplog_warnings)


def test_a_raw_nul_in_the_authorization_header_is_400(caplog_warnings):
    response = APIClient().get("/api/v1/users/me/", HTTP_AUTHORIZATION="Token abc\x00def")
    assert api_error(response, 400)["code"] == "bad_request"
    _no_error_lines(caplog_warnings)


def test_a_nul_in_the_query_string_is_400_on_the_admin_changelist(client, caplog_warnings):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.get(reverse("admin:articles_article_changelist") + "?status=%00")
    assert response.status_code == 400
    _no_error_lines(caplog_warnings)


def test_a_nul_in_an_api_query_string_is_400_in_the_error_shape(client):
    api_error(client.get("/api/v1/articles/?author=%00"), 400)


@pytest.mark.parametrize("ordering", ["title", "-title", "published_at", "-published_at"])
def test_a_nul_inside_a_forged_cursor_is_an_invalid_cursor(client, caplog_warnings, ordering):
    # The cursor is base64, so the query string's NUL check never sees what it holds.
    ArticleFactory(published=True)
    forged = base64.b64encode(urlencode({"p": "a\x00b"}).encode()).decode()
    response = client.get("/api/v1/articles/", {"ordering": ordering, "cursor": forged})
    assert api_error(response, 404)["message"] == "Invalid cursor"
    _no_error_lines(caplog_warnings)


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
@pytest.mark.parametrize("field", ["published_after", "published_before"])
def test_a_day_at_the_end_of_the_calendar_is_a_400_naming_the_field(client, caplog_warnings, field, day):
    # Its start, or the next day's, in a zone away from UTC, is an instant Python cannot hold.
    ArticleFactory(published=True)
    assert field in api_error(client.get("/api/v1/articles/", {field: day}), 400)["fields"]
    _no_error_lines(caplog_warnings)


def test_an_author_id_past_a_64_bit_integer_is_a_400_naming_the_field(client, caplog_warnings):
    # SQLite cannot bind it (OverflowError); PostgreSQL and MariaDB would answer an empty list.
    assert "author" in api_error(client.get("/api/v1/articles/", {"author": str(2**63)}), 400)["fields"]
    assert client.get("/api/v1/articles/", {"author": str(2**63 - 1)}).json()["results"] == []
    _no_error_lines(caplog_warnings)


def test_a_tab_or_newline_encoded_in_a_query_value_is_left_to_the_view(client):
    # The view refuses a newline where it cannot be a date, naming the field.
    assert "published_after" in api_error(client.get("/api/v1/articles/?published_after=%0A"), 400)["fields"]
    assert client.get("/api/v1/articles/autocomplete/?q=a%09b").status_code == 200


def test_a_nul_in_a_json_field_is_refused_by_the_serializer_and_stores_nothing(author_token):
    token, _ = author_token
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token}")
    count = Article.objects.count()
    response = client.post("/api/v1/articles/", {"title": "a\x00b", "body": "c\x00d"}, format="json")
    error = api_error(response, 400)
    assert set(error["fields"]) == {"title", "body"}
    assert "Null characters are not allowed." in error["fields"]["title"]
    assert Article.objects.count() == count


def test_a_nul_in_a_form_field_is_a_form_error(client, caplog_warnings):
    response = client.post(
        reverse("admin:login"), {"username": "admin\x00@example.com", "password": "x\x00y"}
    )
    assert response.status_code == 200  # the form again, with its errors
    assert b"Null characters are not allowed." in response.content
    _no_error_lines(caplog_warnings)


def test_a_permission_denied_page_is_one_warning_line_without_a_traceback(client, caplog_warnings):
    # The admin's autocomplete refuses parameters naming no model with PermissionDenied; Django
    # would log each such request with the exception's traceback.
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.get(
        reverse("admin:autocomplete"), {"app_label": "x", "model_name": "y", "field_name": "z"}
    )
    assert response.status_code == 403
    _no_error_lines(caplog_warnings)
    refusals = [record for record in caplog_warnings.records if record.levelno == logging.WARNING]
    assert [record.getMessage().split(":")[0] for record in refusals] == [
        "refused with 403 on /admin/autocomplete/"
    ]


# 2: deeply nested JSON.


@pytest.mark.parametrize("url_name", ["v1:users:login", "v1:users:token", "v1:articles:article-list"])
def test_deeply_nested_json_is_400_parse_error(author_token, caplog_warnings, url_name):
    token, _ = author_token
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token}")
    count = Article.objects.count()
    response = client.post(reverse(url_name), data=DEEP_JSON, content_type="application/json")
    assert api_error(response, 400)["code"] == "parse_error"
    assert Article.objects.count() == count
    _no_error_lines(caplog_warnings)


# 4: the Host a client sends never reaches another client's links.


def test_the_cached_list_never_serves_one_hosts_links_to_another(client):
    ArticleFactory.create_batch(2, published=True)
    poisoned = client.get("/api/v1/articles/?page_size=1", HTTP_HOST="localhost:6666")
    assert poisoned.json()["next"].startswith("http://localhost:6666/")
    honest = client.get("/api/v1/articles/?page_size=1", HTTP_HOST="localhost")
    assert honest.json()["next"].startswith("http://localhost/api/v1/articles/")


# 6: /readyz tells the public only which dependency is down.


def test_readyz_through_a_proxy_names_the_failed_check_without_its_details(client, settings, caplog):
    redis_port = closed_port()
    settings.CACHES = _redis_cache(f"redis://127.0.0.1:{redis_port}/0")
    caplog.set_level(logging.WARNING)
    response = client.get(reverse("readyz"), HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["cache"] == {"ok": False}
    assert body["checks"]["database"] == {"ok": True}
    assert str(redis_port) not in response.content.decode()
    warning = next(r for r in caplog.records if r.getMessage().startswith("readiness check failed"))
    assert str(redis_port) in warning.getMessage()


def test_readyz_keeps_the_details_for_a_local_unproxied_caller(client, settings):
    settings.CACHES = _redis_cache(f"redis://127.0.0.1:{closed_port()}/0")
    response = client.get(reverse("readyz"))
    assert "Connection" in response.json()["checks"]["cache"]["detail"]


# 8: one error shape, whoever produced the error.


def test_a_missing_article_is_a_404_in_the_error_shape(client):
    assert api_error(client.get("/api/v1/articles/no-such-article/"), 404)["code"] == "not_found"


def test_an_unknown_format_is_a_404_in_the_error_shape(client):
    api_error(client.get("/api/v1/articles/?format=xyz"), 404)


def test_a_multipart_field_over_the_limit_is_413_and_not_an_error_line(client, settings, caplog_warnings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = client.post(reverse("v1:users:login"), {"email": "a" * 4096, "password": "x"})
    assert api_error(response, 413)["code"] == "request_too_large"
    _no_error_lines(caplog_warnings)


def test_a_form_field_over_the_limit_on_a_page_is_413_and_not_an_error_line(
    client, settings, caplog_warnings
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = client.post(reverse("admin:login"), {"username": "a" * 4096, "password": "x"})
    assert response.status_code == 413
    _no_error_lines(caplog_warnings)


def test_a_disallowed_host_is_one_warning_line_without_a_traceback(client, caplog_warnings):
    assert client.get("/", HTTP_HOST="evil.example.com").status_code == 400
    _no_error_lines(caplog_warnings)


def test_a_throttled_login_says_when_to_retry(monkeypatch):
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "login", "1/minute")
    client = APIClient()
    for _ in range(2):
        response = client.post(reverse("v1:users:login"), {"email": "a@example.com", "password": "x"})
    assert api_error(response, 429)["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 60


def test_a_locked_out_login_says_when_to_retry(settings):
    settings.AXES_FAILURE_LIMIT = 1
    cache.clear()
    user = UserFactory()
    client = APIClient()
    for _ in range(2):
        response = client.post(reverse("v1:users:login"), {"email": user.email, "password": "wrong"})
    assert api_error(response, 429)["code"] == "locked_out"
    assert int(response["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())


def test_a_locked_out_admin_login_page_says_when_to_retry(settings):
    settings.AXES_FAILURE_LIMIT = 1
    user = UserFactory(is_staff=True)
    client = Client()
    for _ in range(2):
        response = client.post(reverse("admin:login"), {"username": user.email, "password": "wrong"})
    assert response.status_code == 429
    assert int(response["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())
