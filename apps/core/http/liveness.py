"""The liveness probe, answered in front of Django.

/healthz says one thing: this worker process accepts and answers HTTP requests. Nothing Django
does for a request (middleware, host validation, sessions, the HTTPS redirect) adds to that, and
load balancers probe every worker every few seconds, so the probe is answered by a thin WSGI
layer before Django is called, at about the cost of a bare WSGI app (the /healthz case in
docs/performance.md). It touches no dependency, so an outage of the database or Redis never gets
a healthy process restarted. A probe by IP address is not refused by ALLOWED_HOSTS, and probes
are not counted in the request metrics.

/readyz, which checks the dependencies, is a Django view and goes through everything.
"""

from collections.abc import Callable, Iterable
from typing import Any

from apps.core.observability.request_id import request_id_from_header

LIVENESS_PATH = "/healthz"
_BODY = b'{"status": "ok"}'

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def with_liveness(app: WSGIApp) -> WSGIApp:
    """`app`, with GET and HEAD of LIVENESS_PATH answered before it is called."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != LIVENESS_PATH:
            return app(environ, start_response)
        # The caller's request id comes back (nginx sets one), so a probe can be traced in the logs.
        request_id = request_id_from_header(environ.get("HTTP_X_REQUEST_ID"))
        method = environ.get("REQUEST_METHOD")
        if method not in ("GET", "HEAD"):
            start_response(
                "405 Method Not Allowed",
                [("Allow", "GET, HEAD"), ("Content-Length", "0"), ("X-Request-ID", request_id)],
            )
            return []
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(_BODY))),
                ("Cache-Control", "no-store"),
                ("X-Request-ID", request_id),
            ],
        )
        return [] if method == "HEAD" else [_BODY]

    return application
