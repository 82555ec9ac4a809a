"""One JSON error shape for every API error.

    {"error": {"code": "invalid", "message": "...", "fields": {"email": ["..."]}},
     "request_id": "..."}

`fields` appears only for validation errors. The request id lets a user's report be
matched with the server's log lines.
"""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.observability.request_id import current_request_id


def error_body(code: str, message: str, fields: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        error["fields"] = fields
    return {"error": error, "request_id": current_request_id.get()}


def error_response(status: int, code: str, message: str) -> JsonResponse:
    """The error shape for responses made outside DRF (middleware, Django's error handlers)."""
    return JsonResponse(error_body(code, message), status=status)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, reshaped. Anything DRF does not handle stays a 500: that is a bug."""
    if isinstance(exc, DjangoValidationError):
        # Services validate with Django's exception; to the client it is the same 400.
        exc = exceptions.ValidationError(detail=as_serializer_error(exc))
    elif isinstance(exc, Http404):
        # get_object_or_404 and DRF's own content negotiation (`?format=xyz`) raise Django's 404.
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body("invalid", "The request is invalid; see fields.", fields)
        return response
    code = exc.get_codes()
    response.data = error_body(code if isinstance(code, str) else exc.default_code, str(exc.detail))
    return response
