"""Health endpoints and the error handlers that give API paths JSON bodies."""

import logging
import sys

from django.conf import settings
from django.core.exceptions import BadRequest, RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.utils.cache import add_never_cache_headers
from django.views import csrf, defaults
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_safe

from apps.core.api.errors import error_response
from apps.core.http.health import run_checks
from apps.core.http.middleware import is_local_unproxied
from apps.core.http.outages import database_failure, outage_response
from apps.core.http.status import stack_status

API_PATH_PREFIX = "/api/"
logger = logging.getLogger(__name__)


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """The stack's live status in development, and to staff; everyone else sees the welcome.

    The status names versions and hosts' answers, which are for the people who run the site.
    """
    if not (settings.DEBUG or request.user.is_staff):
        return render(request, "core/home.html")
    response = render(request, "core/home.html", {"status": stack_status(request)})
    # Live by definition, and for one user: no cache (nginx's or the browser's) may keep it.
    add_never_cache_headers(response)
    return response


# Browsers ask for /favicon.ico on pages that name no icon (JSON, the browsable API, the API docs):
# without this each such visit logs a 404 warning. Not permanent: the icon's hashed name changes
# with it, and a browser keeps a permanent redirect for good.
@cache_control(max_age=86400, public=True)
@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect(static("core/favicon.svg"))


@never_cache
@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: every required dependency answers. 503 names the ones that did not.

    The probe is public: it says which dependency is down, not where it is or what it said
    (host, port, exception text). The details go to the log line run_checks writes, and to
    callers on this host that did not come through a proxy (an operator's curl).
    """
    results = run_checks()
    ready = all(result.ok for result in results if result.required)
    healthy = all(result.ok for result in results)
    detailed = is_local_unproxied(request)
    body = {
        "status": "ok" if healthy else "degraded" if ready else "unavailable",
        "checks": {
            result.name: {"ok": result.ok, "detail": result.detail} if detailed else {"ok": result.ok}
            for result in results
        },
    }
    response = JsonResponse(body, status=200 if ready else 503)
    # run_checks logged the failure, with its details, as a warning: a load balancer polls this
    # every few seconds during an outage, and Django would add an error line (a Sentry event) each.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PATH_PREFIX)


def _printable(text: str) -> str:
    # What a client sent, safe in a log line: control characters escaped, length bounded.
    return text.encode("unicode_escape").decode("ascii")[:300]


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's answer to a request it refused (BadRequest, SuspiciousOperation, an unreadable
    body), logged as one warning line: a client can send these as often as it likes, so they
    must not be errors with a traceback each (Django's default for SuspiciousOperation)."""
    response: HttpResponse
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        message = f"The request body is larger than the limit of {limit} bytes."
        if _is_api(request):
            response = error_response(413, "request_too_large", message)
        else:
            response = HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
    elif _is_api(request):
        # A BadRequest's message is written for the client (ours, Django's); a SuspiciousOperation's
        # is written for the operator and may repeat what the client sent.
        message = "The request could not be understood."
        if isinstance(exception, BadRequest):
            message = str(exception)
        response = error_response(400, "bad_request", message)
    else:
        response = defaults.bad_request(request, exception)
    _log_refusal(request, response, exception)
    return response


def _log_refusal(request: HttpRequest, response: HttpResponse, exception: Exception) -> None:
    """One warning line for a request Django refused. Django would log it itself, with the
    exception's traceback (as an error for a SuspiciousOperation), once for every time a client
    sends it."""
    logger.warning(
        "refused with %s on %s: %s: %s",
        response.status_code,
        _printable(request.path),
        type(exception).__name__,
        _printable(str(exception)),
    )
    response._has_been_logged = True  # type: ignore[attr-defined]


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    response: HttpResponse
    if _is_api(request):
        response = error_response(403, "permission_denied", "You do not have permission to do this.")
    else:
        response = defaults.permission_denied(request, exception)
    _log_refusal(request, response, exception)
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's answer to a request its CSRF check refused (settings.CSRF_FAILURE_VIEW): the API's
    error shape on API paths, Django's own page elsewhere."""
    if _is_api(request):
        return error_response(403, "csrf_failed", f"CSRF verification failed: {reason}")
    return csrf.csrf_failure(request, reason=reason)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return error_response(404, "not_found", f"No API endpoint at {request.path}.")
    return defaults.page_not_found(request, exception)


def locked_out(
    request: HttpRequest, credentials: dict | None = None, *args: object, **kwargs: object
) -> HttpResponse:
    """django-axes' answer to a locked-out login, in the API's error shape on API paths."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    message = f"Too many failed logins; try again in {minutes} minute(s)."
    response: HttpResponse
    if _is_api(request):
        response = error_response(429, "locked_out", message)
    else:
        response = render(request, "429.html", {"message": message}, status=429)
    # The whole cool-off: the lockout may end sooner, never later.
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this while handling the exception, which it does not pass: a database outage
    # raised outside a view (a session saved by its middleware) is a 503 like one raised inside.
    error = sys.exc_info()[1]
    failure = database_failure(error)
    if error is not None and failure is not None:
        return outage_response(request, error, failure)
    if _is_api(request):
        return error_response(500, "server_error", "Something went wrong on our side; it has been logged.")
    return defaults.server_error(request)
