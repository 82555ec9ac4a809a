"""What a server answered, and calls that stand in for a server or a client."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    """An HTTP answer as it came: headers in order, repeated ones (Set-Cookie) kept apart."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header `name` (any case), or None."""
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


def call_wsgi(
    application: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]],
    path: str,
    *,
    method: str = "GET",
    host: str = "testserver",
    **headers: str,
) -> tuple[str, dict[str, str], bytes]:
    """Call a WSGI application as a server would, `path` with its query string; its status,
    headers and body. The answer is closed afterwards, which sends Django's request_finished."""
    path, _, query = path.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": host,
        "SERVER_PORT": "80",
        "HTTP_HOST": host,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.url_scheme": "http",
        **headers,
    }
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer["status"], answer["headers"] = status, dict(headers)

    result = application(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return answer["status"], answer["headers"], body


def api_error(response: Any, status: int) -> dict[str, Any]:
    """The `error` of a Django test client's response, asserting its status and the API's one
    error shape: only `error` and `request_id`, the id the response header carries, a message."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["request_id"] == response["X-Request-ID"]
    assert body["error"]["message"]
    return body["error"]
