"""Request-wide middleware: request ids, metrics, control characters, read-your-writes routing and
body size limits."""

import ipaddress
import logging
import re
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from django.conf import settings
from django.core.exceptions import BadRequest, MiddlewareNotUsed
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core.api.errors import error_response
from apps.core.data.db_router import RECENT_WRITE_COOKIE, request_routing
from apps.core.observability import metrics
from apps.core.observability.request_id import REQUEST_ID_HEADER, current_request_id, request_id_from_header
from apps.core.tasks import monitoring

Handler = Callable[[HttpRequest], HttpResponse]
logger = logging.getLogger(__name__)


_REQUEST_ID_META = "HTTP_" + REQUEST_ID_HEADER.upper().replace("-", "_")


class RequestIdMiddleware:
    """Takes the request id from `X-Request-ID` (or makes one) and returns it in the response."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # META, not request.headers: building that mapping costs more than the rest of this middleware.
        request_id = request_id_from_header(request.META.get(_REQUEST_ID_META))
        token = current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


# C0 controls and DEL are never part of a header value (RFC 9110; a tab is) or of a cookie a browser
# keeps (RFC 6265bis), and never part of a path here.
_CONTROL_IN_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CONTROL_IN_PATH = re.compile(r"[\x00-\x1f\x7f]")


def _has(pattern: re.Pattern[str], value: str) -> bool:
    # isprintable() is one quick pass, true for nearly every value; the pattern decides the rest
    # (a tab, or bytes above 0x7f that the server decoded as Latin-1).
    return not value.isprintable() and pattern.search(value) is not None


def control_character_in(request: HttpRequest) -> str | None:
    """Which part of the request holds a control character where none can be valid, or None.

    A query value may hold an encoded tab or newline (a textarea sent by GET), so there only NUL is
    refused: PostgreSQL cannot store or compare it.
    """
    if _has(_CONTROL_IN_PATH, request.path_info):
        return "path"
    query = request.META.get("QUERY_STRING", "")
    if "%00" in query or "\x00" in query:
        return "query string"
    for key, value in request.META.items():
        if (key.startswith("HTTP_") or key == "CONTENT_TYPE") and _has(_CONTROL_IN_HEADER, value):
            return f"{key.removeprefix('HTTP_').replace('_', '-').title()} header"
    # Parsed, so a quoted cookie's escapes ("\000") count too.
    for name, value in request.COOKIES.items():
        if _has(_CONTROL_IN_HEADER, name) or _has(_CONTROL_IN_HEADER, value):
            return "cookies"
    return None


class ControlCharacterMiddleware:
    """Refuses a request with a control character where none can be valid, as a 400.

    A NUL reaching the database is a 500 (PostgreSQL refuses it in text), whichever part of the
    request carried it: a session cookie, a slug in the path, a token, a filter in the admin.
    Django checks none of these, nor does gunicorn. Raising BadRequest gives Django's 400 through
    handler400 (the API's error shape on API paths), logged as one warning line. Field values in
    bodies are refused by the fields themselves (DRF's and Django's CharField validators).
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        where = control_character_in(request)
        if where is not None:
            raise BadRequest(f"The request has a control character in its {where}.")
        return self.get_response(request)


class ReadYourWritesMiddleware:
    """Lets the request read from a replica unless its client wrote within the last few seconds.

    A request that writes sends the cookie back, valid DATABASE_READ_YOUR_WRITES_SECONDS: long
    enough for the replicas to catch up. A client that drops cookies still reads its own writes
    within one request, not across requests.
    """

    def __init__(self, get_response: Handler) -> None:
        if not settings.DATABASE_REPLICAS:
            # Without replicas every query goes to the primary: Django leaves this middleware out.
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with request_routing(recent_write=RECENT_WRITE_COOKIE in request.COOKIES) as routing:
            response = self.get_response(request)
        if routing.wrote:
            response.set_cookie(
                RECENT_WRITE_COOKIE,
                "1",
                max_age=settings.DATABASE_READ_YOUR_WRITES_SECONDS,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response


class BodySizeLimitMiddleware:
    """Refuses bodies declared larger than DATA_UPLOAD_MAX_MEMORY_SIZE with a 413.

    Django enforces the limit only when `request.body` is read; DRF's parsers stream the
    request instead, so without this an API endpoint would read any size it is sent.
    Multipart uploads are left to Django's own upload handlers.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        content_type = request.META.get("CONTENT_TYPE", "")
        if limit is not None and not content_type.startswith("multipart/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return error_response(400, "bad_request", "Content-Length is not a number.")
            if length > limit:
                return error_response(
                    413, "request_too_large", f"The request body is larger than the limit of {limit} bytes."
                )
        return self.get_response(request)


class QueryCounter:
    """A database execute wrapper that counts queries and adds up their time."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.count += 1


class MetricsMiddleware:
    """Times every request by view, counts it by status class, and counts its database queries.

    Also answers /internal/metrics (what Munin reads), before host validation and the HTTPS
    redirect, to clients on this host that did not come through a proxy (`is_local_unproxied`).
    Its polls send no metrics.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == INTERNAL_METRICS_PATH and is_local_unproxied(request):
            return internal_metrics(request)
        started = time.perf_counter()
        queries = QueryCounter()
        with ExitStack() as stack:
            # The request's metrics (cache hits included) leave in one packet at the end.
            stack.enter_context(metrics.batch())
            for connection in connections.all():
                stack.enter_context(connection.execute_wrapper(queries))
            response = self.get_response(request)
            milliseconds = (time.perf_counter() - started) * 1000
            try:
                self._record(request, response, milliseconds, queries)
            except Exception:
                # A metric must never cost the user their response.
                logger.exception("could not record request metrics")
        return response

    @staticmethod
    def _record(
        request: HttpRequest, response: HttpResponse, milliseconds: float, queries: QueryCounter
    ) -> None:
        match = request.resolver_match
        view = metrics.metric_segment(match.view_name) if match and match.view_name else "unresolved"
        metrics.timing(f"request.time.{view}", milliseconds)
        status_class = f"{response.status_code // 100}xx"
        metrics.incr(f"request.status.{status_class}")
        metrics.incr("request.db.queries", queries.count)
        metrics.timing("request.db.time", queries.seconds * 1000)


INTERNAL_METRICS_PATH = "/internal/metrics"
_PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED")


def is_local_unproxied(request: HttpRequest) -> bool:
    """True for a client on this host that did not come through a proxy.

    nginx connects from 127.0.0.1 too, so a request carrying a proxy header is refused even from
    loopback; gunicorn on a unix socket reports an empty address, which only local processes reach.
    """
    if any(header in request.META for header in _PROXY_HEADERS):
        return False
    address = request.META.get("REMOTE_ADDR") or ""
    if not address:
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def internal_metrics(request: HttpRequest) -> HttpResponse:
    """Queue depths, beat's heartbeat and roll call, and dead letters as JSON, for the Munin plugins."""
    response = JsonResponse(monitoring.snapshot())
    response["Cache-Control"] = "no-store"
    return response
