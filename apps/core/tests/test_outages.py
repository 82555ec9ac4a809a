"""Which database errors are outages (503 with Retry-After) and which are bugs (500).

The real outages (a stopped PostgreSQL, an unreachable one, a cancelled query) are in
tests/faults/; these cover the classification and both paths into it without a server.
"""

import sqlite3

import psycopg
import pytest
from django.db.utils import InterfaceError, OperationalError, ProgrammingError
from django.http import HttpRequest, HttpResponse
from django.urls import path

from apps.core.http.outages import database_failure


def _django_error(kind: type[Exception], driver_error: Exception) -> Exception:
    """The error as Django raises it: its own class, the driver's error as the cause."""
    try:
        raise kind(str(driver_error)) from driver_error
    except kind as error:
        return error


def refused_view(request: HttpRequest) -> HttpResponse:
    raise _django_error(OperationalError, psycopg.OperationalError("connection refused"))


def missing_table_view(request: HttpRequest) -> HttpResponse:
    raise _django_error(ProgrammingError, psycopg.errors.UndefinedTable('relation "x" does not exist'))


class FailingMiddleware:
    """Fails after the view, as SessionMiddleware does when it cannot save the session."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        self.get_response(request)
        raise _django_error(OperationalError, psycopg.OperationalError("server closed the connection"))


def ok_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


handler500 = "apps.core.http.views.server_error"
urlpatterns = [
    path("api/v1/ok/", ok_view),
    path("api/v1/refused/", refused_view),
    path("refused/", refused_view),
    path("api/v1/missing-table/", missing_table_view),
]


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        (_django_error(OperationalError, psycopg.OperationalError("connection refused")), "unavailable"),
        (_django_error(OperationalError, psycopg.errors.AdminShutdown("terminating")), "unavailable"),
        (_django_error(OperationalError, psycopg.errors.QueryCanceled("statement timeout")), "timeout"),
        (_django_error(InterfaceError, psycopg.InterfaceError("connection already closed")), "unavailable"),
        (_django_error(OperationalError, sqlite3.OperationalError("database is locked")), "unavailable"),
        (_django_error(OperationalError, sqlite3.OperationalError("no such table: x")), None),
        (_django_error(ProgrammingError, psycopg.errors.UndefinedTable("no relation")), None),
        (RuntimeError("a bug"), None),
    ],
)
def test_database_errors_are_classified_as_outage_timeout_or_bug(error, failure):
    assert database_failure(error) == failure


@pytest.mark.urls(__name__)
def test_an_api_request_during_an_outage_gets_503_in_the_error_shape_with_retry_after(client, caplog):
    response = client.get("/api/v1/refused/", HTTP_X_REQUEST_ID="outage-1")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "error": {
            "code": "database_unavailable",
            "message": "The database is unavailable for a moment; try again in a few seconds.",
        },
        "request_id": "outage-1",
    }
    outage_lines = [record for record in caplog.records if "answered 503" in record.getMessage()]
    assert len(outage_lines) == 1
    assert "connection refused" in outage_lines[0].getMessage()
    # Django's own "Service Unavailable" line would only repeat it.
    assert not [record for record in caplog.records if record.name == "django.request"]


@pytest.mark.urls(__name__)
def test_a_page_request_during_an_outage_gets_the_styled_503_page(client):
    # Without the django_db mark, a query on the way (a context processor, say) fails the test.
    response = client.get("/refused/")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Content-Type"].startswith("text/html")
    assert b"<h1>Service unavailable</h1>" in response.content
    assert b'class="code">503<' in response.content


@pytest.mark.urls(__name__)
def test_a_database_error_that_is_a_bug_stays_a_500(client):
    client.raise_request_exception = False

    response = client.get("/api/v1/missing-table/")

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"
    assert "Retry-After" not in response


@pytest.mark.urls(__name__)
def test_an_outage_raised_in_middleware_after_the_view_is_a_503_too(client, settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.FailingMiddleware"]
    client.raise_request_exception = False

    response = client.get("/api/v1/ok/")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
