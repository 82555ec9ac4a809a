"""The OpenAPI schema's error responses: the one error shape (apps/core/api/errors.py) as a
component, attached to every operation with the statuses it can answer, so no view lists them.
Operations are grouped by resource: the first segment of the path after the version."""

import re
from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework import permissions, serializers
from rest_framework.authentication import SessionAuthentication

ERROR_STATUSES = {
    400: "The body or a query parameter was refused; `fields` names each problem.",
    401: "No valid credentials; the WWW-Authenticate header names the scheme to use.",
    403: "Authenticated but not allowed, or a session's write without a valid CSRF token.",
    404: "No such object here, or a page past the last one.",
    405: "This path does not take that method; the Allow header lists those it takes.",
    413: "The body is larger than the server accepts.",
    415: "The body's Content-Type is not one this operation parses.",
    429: "Too many requests (or failed logins); the Retry-After header says when to try again.",
    503: "A service the request needs is down; the Retry-After header says when to try again.",
}


# What a client sees for each status: one example body apiece, in the docs beside the shape.
ERROR_EXAMPLES: dict[int, dict[str, Any]] = {
    400: {
        "code": "invalid",
        "message": "The request has invalid fields.",
        "fields": {"title": ["This field is required."]},
    },
    401: {"code": "not_authenticated", "message": "Authentication credentials were not provided."},
    403: {"code": "permission_denied", "message": "You do not have permission to perform this action."},
    404: {"code": "not_found", "message": "No Article matches the given query."},
    405: {"code": "method_not_allowed", "message": 'Method "PUT" not allowed.'},
    413: {"code": "request_too_large", "message": "The request body is larger than the server accepts."},
    415: {"code": "unsupported_media_type", "message": 'Unsupported media type "text/plain" in request.'},
    429: {"code": "throttled", "message": "Request was throttled. Expected available in 12 seconds."},
    503: {
        "code": "database_unavailable",
        "message": "The database is unavailable for a moment; try again in a few seconds.",
    },
}
EXAMPLE_REQUEST_ID = "3f2c9f0e8a5b4d7c9e1f2a3b4c5d6e7f"


class ErrorDetailSerializer(serializers.Serializer[dict[str, Any]]):
    code = serializers.CharField(help_text="For programs: stable, snake_case (`invalid`, `throttled`...).")
    message = serializers.CharField(help_text="For people; the wording may change.")
    # DRF's metaclass takes declared fields off the class, so this does not hide Serializer.fields.
    fields = serializers.DictField(  # type: ignore[assignment]
        required=False, help_text="Only for `invalid`: the problems, by field name (or `non_field_errors`)."
    )


class ErrorSerializer(serializers.Serializer[dict[str, Any]]):
    error = ErrorDetailSerializer()
    request_id = serializers.CharField(help_text="The X-Request-ID of the response, for a report to quote.")


_RESOURCE = re.compile(r"^/api/v[0-9]+/([^/{]+)/")


def _safe(method: str) -> bool:
    return method in permissions.SAFE_METHODS


class ErrorResponsesAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema (REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]) plus the error responses.

    A status a view declares itself (`@extend_schema(responses=...)`) is kept as it wrote it.
    """

    def get_tags(self) -> list[str]:
        # /api/v1/articles/{slug}/publish/ is under "articles": one group per resource, not per
        # version. A view's own @extend_schema(tags=...) still wins.
        resource = _RESOURCE.match(self.path)
        return [resource.group(1)] if resource else super().get_tags()

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        error = self.resolve_serializer(ErrorSerializer, "response").ref
        for code in sorted(self._error_statuses(operation)):
            operation["responses"].setdefault(
                str(code),
                {"description": ERROR_STATUSES[code], "content": {"application/json": {"schema": error}}},
            )
        # An example body beside each error response, a view's own declared ones included.
        for status, response in operation["responses"].items():
            body = response.get("content", {}).get("application/json", {})
            if body.get("schema") == error and int(status) in ERROR_EXAMPLES:
                example = {"error": ERROR_EXAMPLES[int(status)], "request_id": EXAMPLE_REQUEST_ID}
                body.setdefault("example", example)
        return operation

    def _error_statuses(self, operation: dict[str, Any]) -> set[int]:
        view, method = self.view, self.method
        has_body = "requestBody" in operation
        paginator = getattr(view, "paginator", None)
        paging = {
            getattr(paginator, "page_query_param", None),
            getattr(paginator, "page_size_query_param", None),
        }
        query = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        statuses = {405, 429, 503}
        if has_body:
            statuses |= {400, 413, 415}
        if query - paging:
            statuses.add(400)
        if "{" in self.path or query & paging - {None}:
            statuses.add(404)
        # DRF answers 401 only when the first authentication class names a scheme, else 403.
        if view.get_authenticate_header(view.request):
            statuses.add(401)
        if any(self._permission_can_refuse(p, method) for p in view.get_permissions()):
            statuses.add(403)
        if not _safe(method) and any(isinstance(a, SessionAuthentication) for a in view.get_authenticators()):
            statuses.add(403)  # DRF checks a session's CSRF token on writes
        return statuses

    @staticmethod
    def _permission_can_refuse(permission: object, method: str) -> bool:
        if isinstance(permission, permissions.AllowAny):
            return False
        return not (isinstance(permission, permissions.IsAuthenticatedOrReadOnly) and _safe(method))
