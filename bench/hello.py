"""The ceiling: the least a WSGI app can do, served by the same gunicorn and nginx configs as the project."""

from collections.abc import Callable, Iterable
from typing import Any

BODY = b'{"status":"ok"}'


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
    return [BODY]
