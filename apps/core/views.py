"""Health endpoints and the error handlers that give API paths JSON bodies."""

import sys

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.core.api.errors import error_response
from apps.core.health import run_checks
from apps.core.outages import database_failure, outage_response

API_PATH_PREFIX = "/api/"


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "core/home.html")


@never_cache
@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: every required dependency answers. 503 names the ones that did not."""
    results = run_checks()
    ready = all(result.ok for result in results if result.required)
    healthy = all(result.ok for result in results)
    body = {
        "status": "ok" if healthy else "degraded" if ready else "unavailable",
        "checks": {result.name: {"ok": result.ok, "detail": result.detail} for result in results},
    }
    return JsonResponse(body, status=200 if ready else 503)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PATH_PREFIX)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return error_response(400, "bad_request", "The request could not be understood.")
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return error_response(403, "permission_denied", "You do not have permission to do this.")
    return defaults.permission_denied(request, exception)


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
    if _is_api(request):
        return error_response(429, "locked_out", message)
    return HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")


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
