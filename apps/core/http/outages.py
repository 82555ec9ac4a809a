"""A database that fails answers 503 with Retry-After, not a 500 with a traceback per request.

A stopped, restarting or overloaded database is an outage, not a bug: the client may try again,
the load balancer and monitoring see 503s, and the log gets one line per request instead of a
traceback. A query the server cancelled (statement_timeout) is answered the same way but logged
as an error, since a query that slow is a bug to fix. Errors that are bugs (a missing table, bad
SQL) stay 500s.

Both Django paths lead here: `DatabaseOutageMiddleware` for errors raised in a view (DRF views
re-raise what their handler does not know), and `apps.core.http.views.server_error` for errors raised
in middleware (a session saved after the view).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

from django.db.utils import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from apps.core.api.errors import error_response

logger = logging.getLogger(__name__)

# Seconds a client is told to wait: a restart or failover of the database takes about this long.
RETRY_AFTER_SECONDS = 5

Failure = Literal["unavailable", "timeout"]

# SQLSTATE 57014: the server cancelled the query (statement_timeout).
_QUERY_CANCELED = "57014"
# MySQL/MariaDB raise OperationalError for schema errors too (1054 unknown column); only these
# codes are outages: can't connect (2002, 2003), gone away (2006), lost (2013), too many
# connections (1040), lock wait timeout (1205), deadlock (1213).
_MYSQL_OUTAGE_CODES = frozenset({1040, 1205, 1213, 2002, 2003, 2006, 2013})
_MYSQL_TIMEOUT_CODES = frozenset({1969, 3024})  # max_statement_time, max_execution_time
# SQLite raises OperationalError for "no such table" too; only these messages are outages.
_SQLITE_OUTAGE_MESSAGES = ("database is locked", "unable to open database", "disk i/o error")


def database_failure(error: BaseException | None) -> Failure | None:
    """Whether `error` is a database outage, a cancelled query, or neither (a bug: None)."""
    if isinstance(error, InterfaceError):
        return "unavailable"
    if not isinstance(error, OperationalError):
        return None
    cause = error.__cause__
    if getattr(cause, "sqlstate", None) == _QUERY_CANCELED:
        return "timeout"
    module = type(cause).__module__ if cause is not None else ""
    if module.startswith("MySQLdb"):
        code = cause.args[0] if cause is not None and cause.args else None
        if code in _MYSQL_TIMEOUT_CODES:
            return "timeout"
        return "unavailable" if code in _MYSQL_OUTAGE_CODES else None
    if module.startswith("sqlite3"):
        message = str(error).lower()
        return "unavailable" if any(text in message for text in _SQLITE_OUTAGE_MESSAGES) else None
    return "unavailable"


_MESSAGES: dict[Failure, tuple[str, str]] = {
    "unavailable": (
        "database_unavailable",
        "The database is unavailable for a moment; try again in a few seconds.",
    ),
    "timeout": ("query_timeout", "The request took too long on our side and was stopped; try again later."),
}


def outage_response(request: HttpRequest, error: BaseException, failure: Failure) -> HttpResponse:
    """The 503, in the API's error shape on API paths and a short page elsewhere, logged once."""
    code, message = _MESSAGES[failure]
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if failure == "timeout":
        logger.error("query cancelled by the database, answered 503 on %s: %s", request.path, first_line)
    else:
        logger.warning("database unavailable, answered 503 on %s: %s", request.path, first_line)
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = error_response(503, code, message)
    else:
        # Rendered without the request: context processors, which may query the database, do not run.
        response = HttpResponse(render_to_string("503.html", {"message": message}), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    # Django would log "Service Unavailable: <path>" again; the line above says more.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


class DatabaseOutageMiddleware:
    """Answers a view's database outage or cancelled query with a 503 (see the module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        failure = database_failure(exception)
        return None if failure is None else outage_response(request, exception, failure)
