"""The article list behind the front layer (apps/core/public_cache.py): anonymous reads from Redis."""

import json
import pickle
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.http import HttpResponse
from django.urls import reverse

from apps.articles import cache as article_cache
from apps.articles import services
from apps.articles.tests.factories import ArticleFactory
from apps.core import public_cache
from apps.core.cache import raw_client, raw_key
from apps.core.db_router import RECENT_WRITE_COOKIE
from apps.users.tests.factories import UserFactory
from tests.helpers import call_wsgi, closed_port

pytestmark = pytest.mark.django_db


class Front:
    """The app gunicorn serves, minus the liveness probe: the front layer around Django."""

    def __init__(self) -> None:
        self.application = public_cache.with_public_cache(WSGIHandler())
        self.django_requests = 0

    def count(self, **kwargs: Any) -> None:
        self.django_requests += 1

    def get(self, path: str, **headers: str) -> tuple[str, dict[str, str], bytes]:
        return call_wsgi(self.application, path, **headers)


@pytest.fixture
def front() -> Iterator[Front]:
    public_cache._paths.clear()  # what a fresh worker knows
    public_cache.forget_local()
    public_cache._down_until[0] = 0.0
    app = Front()
    # As Django's test client does: the test's transaction must survive the end of a request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    request_started.connect(app.count)
    try:
        yield app
    finally:
        request_started.disconnect(app.count)
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
        public_cache._paths.clear()
        public_cache.forget_local()
        public_cache._down_until[0] = 0.0


LIST = "/api/v1/articles/"


def _warm(front: Front, path: str = LIST, **headers: str) -> bytes:
    """The first request teaches the process the path, the second stores the page."""
    front.get(path, **headers)
    status, _, body = front.get(path, **headers)
    assert status == "200 OK"
    return body


def test_a_repeated_anonymous_list_request_is_answered_without_django(front):
    ArticleFactory.create_batch(3, published=True)
    body = _warm(front)
    before = front.django_requests

    status, headers, cached = front.get(LIST, HTTP_COOKIE="_ga=GA1.2.3; theme=dark")

    assert front.django_requests == before
    assert status == "200 OK"
    assert cached == body
    assert len(json.loads(cached)["results"]) == 3
    assert headers["Content-Type"] == "application/json"


def test_a_hit_carries_djangos_headers_and_its_own_request_id(front):
    ArticleFactory(published=True)
    front.get(LIST)
    _, from_django, _ = front.get(LIST)
    before = front.django_requests

    _, from_cache, _ = front.get(LIST, HTTP_X_REQUEST_ID="client-chosen-7")

    assert front.django_requests == before
    assert from_cache["X-Request-ID"] == "client-chosen-7"
    del from_cache["X-Request-ID"], from_django["X-Request-ID"]
    assert from_cache == from_django
    assert "Content-Security-Policy" in from_cache
    assert from_cache["X-Content-Type-Options"] == "nosniff"


def test_a_change_to_an_article_is_visible_on_the_next_anonymous_request(
    front, django_capture_on_commit_callbacks
):
    article = ArticleFactory(published=True, title="Before")
    _warm(front)
    front.get(LIST)  # a hit from Redis: this process now holds a copy, valid for a second
    assert public_cache._local

    with django_capture_on_commit_callbacks(execute=True):
        services.article_update(article=article, title="After")
    before = front.django_requests
    _, _, body = front.get(LIST)

    assert front.django_requests == before + 1
    assert json.loads(body)["results"][0]["title"] == "After"


@pytest.mark.parametrize(
    ("session_cookie", "headers"),
    [
        ("sessionid", {"HTTP_COOKIE": "sessionid=abc"}),
        ("__Host-sessionid", {"HTTP_COOKIE": "theme=dark; __Host-sessionid=abc"}),
        ("sessionid", {"HTTP_COOKIE": f"{RECENT_WRITE_COOKIE}=1"}),
        ("sessionid", {"HTTP_AUTHORIZATION": "Token abc"}),
    ],
    ids=["session", "production session name", "read-your-writes", "authorization"],
)
def test_a_client_that_may_be_signed_in_always_reaches_django(front, settings, session_cookie, headers):
    settings.SESSION_COOKIE_NAME = session_cookie
    ArticleFactory(published=True)
    _warm(front)
    before = front.django_requests

    front.get(LIST, **headers)

    assert front.django_requests == before + 1


def test_another_accept_header_gets_its_own_answer(front):
    ArticleFactory(published=True)
    _warm(front)
    before = front.django_requests

    status, headers, _ = front.get(LIST, HTTP_ACCEPT="text/html")

    assert front.django_requests == before + 1
    assert status == "200 OK"
    assert headers["Content-Type"].startswith("text/html")


def test_endpoints_no_view_allowed_are_never_looked_up(front):
    ArticleFactory(published=True, title="Zebra crossing")
    path = f"{reverse('v1:articles:article-autocomplete')}?q=zeb"
    for _ in range(3):
        front.get(path)
    assert front.django_requests == 3
    assert path.split("?")[0] not in public_cache._paths


def test_with_redis_down_django_answers_every_request(front, settings):
    ArticleFactory.create_batch(2, published=True)
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }
    down = Front()
    request_started.connect(down.count)
    try:
        for _ in range(3):
            status, _, body = down.get(LIST)
            assert status == "200 OK"
            assert len(json.loads(body)["results"]) == 2
        assert down.django_requests == 3
    finally:
        request_started.disconnect(down.count)


def test_a_response_that_sets_a_cookie_is_not_stored(front):
    lookup = public_cache.Lookup(raw_key("public:test"), "gen-key", b"g1")
    marker = public_cache.Marker("v1:articles:article-list", "gen-key", 60)
    client = raw_client()

    public_cache._store(client, lookup, marker, "200 OK", [("Set-Cookie", "a=1")], b"{}")
    assert client.get(lookup.key) is None

    public_cache._store(client, lookup, marker, "200 OK", [("Content-Type", "application/json")], b"{}")
    assert pickle.loads(client.get(lookup.key))[4] == b"{}"  # noqa: S301


def test_a_hit_is_counted_as_the_request_it_is(front, statsd_listener):
    ArticleFactory(published=True)
    _warm(front)
    statsd_listener.wait_for(lambda names: "keel.request.status.2xx" in names)
    statsd_listener.clear()

    front.get(LIST)

    names = statsd_listener.wait_for(lambda names: "keel.request.public_cache.hit" in names)
    assert {"keel.request.time.v1_articles_article-list", "keel.request.status.2xx"} <= names
    assert front.django_requests == 2


def _entry_keys() -> list[bytes]:
    return list(raw_client().scan_iter(match=raw_key("public:*")))


def test_a_process_answers_from_its_own_copy_until_redis_must_confirm_it_again(front, settings):
    settings.PUBLIC_CACHE_LOCAL_SECONDS = 0.3
    ArticleFactory(published=True)
    body = _warm(front)
    front.get(LIST)  # a hit from Redis, which confirms the entry and leaves a copy here
    raw_client().delete(*_entry_keys())
    before = front.django_requests

    assert front.get(LIST)[2] == body  # from the copy: Redis no longer has the entry
    assert front.django_requests == before
    time.sleep(0.35)
    front.get(LIST)  # the copy is too old: Redis is asked, has nothing, Django answers
    assert front.django_requests == before + 1


def test_with_no_local_copies_every_hit_asks_redis(front, settings):
    settings.PUBLIC_CACHE_LOCAL_SECONDS = 0
    ArticleFactory(published=True)
    _warm(front)
    front.get(LIST)
    raw_client().delete(*_entry_keys())
    before = front.django_requests

    front.get(LIST)

    assert front.django_requests == before + 1


def test_a_change_made_in_another_process_shows_within_the_local_window(front, settings):
    settings.PUBLIC_CACHE_LOCAL_SECONDS = 0.3
    article = ArticleFactory(published=True, title="Before")
    _warm(front)
    front.get(LIST)
    # Another process's change: the row and the generation change, this process's copies stay.
    type(article).objects.filter(pk=article.pk).update(title="After")
    cache.set(article_cache.GENERATION_KEY, "another-process", timeout=None)

    assert json.loads(front.get(LIST)[2])["results"][0]["title"] == "Before"
    time.sleep(0.35)
    assert json.loads(front.get(LIST)[2])["results"][0]["title"] == "After"


def test_a_published_article_is_answered_without_django_and_a_404_never_is(front):
    published = ArticleFactory(published=True)
    draft = ArticleFactory()  # anonymous readers get a 404 for it
    path = reverse("v1:articles:article-detail", kwargs={"slug": published.slug})
    body = _warm(front, path)
    before = front.django_requests

    assert front.get(path)[2] == body
    assert front.django_requests == before

    draft_path = reverse("v1:articles:article-detail", kwargs={"slug": draft.slug})
    statuses = [front.get(draft_path)[0] for _ in range(3)]
    assert statuses == ["404 Not Found"] * 3
    assert front.django_requests == before + 3


def test_an_entry_that_does_not_load_is_a_miss_not_an_error(front):
    ArticleFactory(published=True)
    _warm(front)
    client = raw_client()
    for key in _entry_keys():
        client.set(key, b"not a pickle")
    public_cache.forget_local()
    before = front.django_requests

    status, _, body = front.get(LIST)

    assert status == "200 OK"
    assert front.django_requests == before + 1
    assert len(json.loads(body)["results"]) == 1


def test_a_copy_confirmed_before_a_change_in_this_process_is_not_kept():
    public_cache.forget_local()
    entry: public_cache.Entry = ("gen-key", b"g1", "view", [], b"{}")
    epoch = public_cache._local_epoch
    public_cache.forget_local()  # an article changed while the lookup was on its way

    public_cache._hold("page", entry, time.monotonic(), epoch)

    assert "page" not in public_cache._local


def test_copies_stay_within_the_byte_budget_dropping_the_oldest(monkeypatch):
    public_cache.forget_local()
    monkeypatch.setattr(public_cache, "MAX_LOCAL_BYTES", 250)
    for name in ("a", "b", "c"):
        entry: public_cache.Entry = ("gen-key", b"g1", "view", [], b"x" * 100)
        public_cache._hold(name, entry, time.monotonic(), public_cache._local_epoch)

    assert list(public_cache._local) == ["b", "c"]
    assert public_cache._local_bytes == 200
    public_cache.forget_local()


def test_a_response_for_a_signed_in_user_or_token_is_never_marked(rf):
    request = rf.get(LIST)
    request.user = UserFactory()
    response = public_cache.allow(HttpResponse(b"{}"), request, generation_key="g", timeout=60)
    assert not hasattr(response, "public_cache")

    request.user = AnonymousUser()
    request.auth = "a token DRF accepted"
    response = public_cache.allow(HttpResponse(b"{}"), request, generation_key="g", timeout=60)
    assert not hasattr(response, "public_cache")

    request.auth = None
    response = public_cache.allow(HttpResponse(b"{}"), request, generation_key="g", timeout=60)
    assert isinstance(response.public_cache, public_cache.Marker)
