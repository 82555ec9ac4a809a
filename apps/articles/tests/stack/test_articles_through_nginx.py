"""The example app's API through the production stack: nginx's micro-cache in front of a public
list, pagination links no header can poison, and a task queued by a write run by the worker."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from apps.core.data.db_router import RECENT_WRITE_COOKIE
from tests.support.stack import Stack
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def test_a_repeated_anonymous_api_get_is_answered_from_the_nginx_micro_cache(stack: Stack):
    first = stack.request("GET", "/api/v1/articles/?ordering=title")
    second = stack.request("GET", "/api/v1/articles/?ordering=title")

    assert (first.status, second.status) == (200, 200)
    assert first.header("X-Cache-Status") == "MISS"
    assert second.header("X-Cache-Status") == "HIT"
    assert second.body == first.body


ANALYTICS_COOKIES = ["_ga=GA1.1.1234567890.1700000000; _gid=GA1.1.987654321.1700000000", "_pk_id.1.1fff=abc"]


def test_anonymous_clients_with_analytics_cookies_share_the_nginx_micro_cache_entry(stack: Stack):
    path = "/api/v1/articles/?ordering=published_at"
    first = stack.request("GET", path)
    with_cookies = [stack.request("GET", path, headers={"Cookie": cookie}) for cookie in ANALYTICS_COOKIES]

    assert first.header("X-Cache-Status") == "MISS"
    for reply in with_cookies:
        assert (reply.status, reply.header("X-Cache-Status")) == (200, "HIT")
        assert reply.body == first.body


BYPASSING = {
    "token": {"Authorization": "Token not-a-real-one"},
    "session": {"Cookie": "__Host-sessionid=not-a-real-one"},
    "csrf-token": {"Cookie": f"{ANALYTICS_COOKIES[0]}; __Host-csrftoken=not-a-real-one"},
    "development-session": {"Cookie": "sessionid=not-a-real-one; _ga=GA1.1.1.1"},
    "development-csrf-token": {"Cookie": "csrftoken=not-a-real-one"},
    "recent-write": {"Cookie": f"{RECENT_WRITE_COOKIE}=1"},
}


@pytest.mark.parametrize("client", BYPASSING, ids=list(BYPASSING))
def test_an_api_get_with_a_session_csrf_or_write_cookie_or_credentials_bypasses_the_micro_cache(
    stack: Stack, client: str
):
    """Neither answered from the micro-cache nor stored in it: the next anonymous client misses."""
    path = f"/api/v1/articles/?ordering=-title&probe={client}"
    stack.request("GET", path)  # an entry this client must not be answered from

    reply = stack.request("GET", path, headers=BYPASSING[client])
    cold = path + "&cold=1"
    stored = stack.request("GET", cold, headers=BYPASSING[client])
    anonymous = stack.request("GET", cold)

    assert reply.header("X-Cache-Status") == "BYPASS"
    assert stored.header("X-Cache-Status") == "BYPASS"
    assert anonymous.header("X-Cache-Status") == "MISS"


def test_the_browsable_api_and_json_are_cached_apart(stack: Stack):
    path = "/api/v1/articles/?ordering=title&page_size=3"
    as_json = stack.request("GET", path, headers={"Accept": "application/json"})
    as_html = stack.request("GET", path, headers={"Accept": "text/html"})

    assert (as_json.header("X-Cache-Status"), as_html.header("X-Cache-Status")) == ("MISS", "MISS")
    assert as_json.header("Content-Type") == "application/json"
    assert (as_html.header("Content-Type") or "").startswith("text/html")


PASSWORD = "a-long-passphrase"


@pytest.fixture(scope="module")
def readers(stack: Stack) -> dict[str, dict[str, str]]:
    """The headers of the three kinds of client: anonymous, an API token, a browser session."""
    token = stack.api_token("reader-token@example.com", source="127.0.0.60")
    stack.create_user("reader-session@example.com", PASSWORD)
    login = stack.request(
        "POST",
        "/api/v1/auth/login/",
        body=json.dumps({"email": "reader-session@example.com", "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json", **stack.csrf_headers(source="127.0.0.61")},
        source="127.0.0.61",
    )
    assert login.status == 200, login.body
    session = next(c for c in login.all("Set-Cookie") if c.startswith("__Host-sessionid="))
    return {
        "anonymous": {},
        "token": {"Authorization": f"Token {token}"},
        "session": {"Cookie": session.split(";")[0]},
    }


@pytest.fixture(scope="module")
def three_published_articles(stack: Stack) -> None:
    """Enough for a second page at page_size=1, so a page has both a next and a previous link."""
    code = (
        "from apps.users.models import User\n"
        "from apps.articles import services\n"
        "author = User.objects.create_user('pages@example.com', 'a-long-passphrase')\n"
        "for n in range(3):\n"
        "    services.article_publish(article=services.article_create(author=author, title=f'Paged {n}'))\n"
    )
    created = stack.manage("shell", "--no-imports", "-c", code)
    assert created.returncode == 0, created.stderr


HOSTILE_ORIGINS = {
    "another-port": ({"Host": "localhost:6666"}, ""),
    "the-default-port-written-out": ({"Host": "localhost:443"}, ""),
    "no-port": ({"Host": "localhost"}, ""),
    "upper-case-and-a-port": ({"Host": "LOCALHOST:6666"}, ""),
    "forwarded-headers": (
        {
            "X-Forwarded-Host": "evil.example:6666",
            "X-Forwarded-Port": "6666",
            "X-Forwarded-Proto": "http",
            "Forwarded": "host=evil.example:6666;proto=http",
        },
        "",
    ),
    "an-absolute-request-target": ({}, "https://localhost:6666"),
}


@pytest.mark.parametrize("hostile", HOSTILE_ORIGINS, ids=list(HOSTILE_ORIGINS))
def test_no_host_port_or_forwarded_header_changes_the_links_cached_for_other_clients(
    stack: Stack, readers: dict[str, dict[str, str]], three_published_articles: None, hostile: str
):
    """The hostile request comes first on a cold URL, so it is the one every cache stores."""
    headers, target_prefix = HOSTILE_ORIGINS[hostile]
    # The second page (its cursor from the first), so the page has both a next and a previous link.
    first_page = stack.request("GET", f"/api/v1/articles/?page_size=1&probe={hostile}").json()
    path = "/api/v1/articles/?" + urlsplit(first_page["next"]).query
    errors_before = len(stack.error_lines())

    first = stack.request("GET", target_prefix + path, headers=headers)
    served = {name: stack.request("GET", path, headers=client) for name, client in readers.items()}

    assert first.status == 200, first.body
    assert first.header("X-Cache-Status") == "MISS"
    # The anonymous client is answered from the micro-cache entry the hostile request filled;
    # the others from Django's page cache, filled by the same request.
    assert served["anonymous"].header("X-Cache-Status") == "HIT"
    for name, reply in {"hostile": first, **served}.items():
        assert reply.status == 200, (name, reply.body)
        links = reply.json()
        assert links["next"].startswith(f"{stack.origin}/api/v1/articles/?"), (name, links["next"])
        assert links["previous"].startswith(f"{stack.origin}/api/v1/articles/?"), (name, links["previous"])
    assert stack.error_lines()[errors_before:] == []


@pytest.mark.parametrize(
    "credentials", [{}, {"Authorization": "Token not-a-real-token"}], ids=["anonymous", "token"]
)
def test_an_api_url_just_under_the_limit_reaches_django_and_logs_no_nginx_error(
    stack: Stack, credentials: dict[str, str]
):
    """The micro-cache keeps the URL in its key, beside gunicorn's headers: a long query string
    must still get Django's answer, not a 503 for an "upstream sent too big header"."""
    errors_before = len(stack.nginx_error_lines())
    ordering = ",".join(["title"] * 1300)  # about 7.8 KB, a field Django refuses
    for path, status in [
        (f"/api/v1/articles/?search={'a' * 7900}", 200 if not credentials else 401),
        (f"/api/v1/articles/?ordering={ordering}", 400 if not credentials else 401),
    ]:
        reply = stack.request("GET", path, headers=credentials, source="127.0.0.63")
        assert reply.status == status, reply.body[:300]
        if status >= 400:
            assert set(reply.json()) == {"error", "request_id"}
    assert stack.nginx_error_lines()[errors_before:] == []


def test_a_task_queued_through_the_api_is_run_by_the_worker(stack: Stack):
    token = stack.api_token("grace@example.com", source="127.0.0.11")
    auth = {"Content-Type": "application/json", "Authorization": f"Token {token}"}
    article = stack.request(
        "POST",
        "/api/v1/articles/",
        body=json.dumps({"title": "Indexed by the worker"}).encode(),
        headers=auth,
    )
    assert article.status == 201, article.body
    published = stack.request("POST", f"/api/v1/articles/{article.json()['slug']}/publish/", headers=auth)
    assert published.status == 200, published.body

    def indexed_titles() -> list[str]:
        # Authenticated, so nginx's micro-cache cannot answer with the result of an earlier poll.
        answer = stack.request("GET", "/api/v1/articles/autocomplete/?q=indexed+by", headers=auth)
        body = answer.json()
        return [item["title"] for item in body["results"]] if body["served_from"] == "redis" else []

    # The request only queued index_article; the title reaches Redis when the worker runs it.
    wait_until(lambda: indexed_titles() == ["Indexed by the worker"], timeout=30, what="the worker to index")
