"""Request-wide middleware: request ids, read-your-writes routing and body size limits."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from apps.core.api.errors import error_response
from apps.core.db_router import RECENT_WRITE_COOKIE, request_routing
from apps.core.request_id import REQUEST_ID_HEADER, current_request_id, request_id_from_header

Handler = Callable[[HttpRequest], HttpResponse]


class RequestIdMiddleware:
    """Takes the request id from `X-Request-ID` (or makes one) and returns it in the response."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from_header(request.headers.get(REQUEST_ID_HEADER))
        token = current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


class ReadYourWritesMiddleware:
    """Lets the request read from a replica unless its client wrote within the last few seconds.

    A request that writes sends the cookie back, valid DATABASE_READ_YOUR_WRITES_SECONDS: long
    enough for the replicas to catch up. A client that drops cookies still reads its own writes
    within one request, not across requests.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not settings.DATABASE_REPLICAS:
            return self.get_response(request)
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
