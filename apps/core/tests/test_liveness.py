"""/healthz, answered in front of Django by the WSGI application gunicorn serves."""

import pytest

from config.wsgi import application
from tests.support.http import call_wsgi


def _call(method: str = "GET", path: str = "/healthz", **headers: str) -> tuple[str, dict[str, str], bytes]:
    # A probe by address: in no ALLOWED_HOSTS.
    return call_wsgi(application, path, method=method, host="10.1.2.3", **headers)


def test_healthz_answers_without_touching_the_database_or_the_host_check():
    # No django_db mark: pytest-django raises on any database access in this test.
    status, headers, body = _call()
    assert status == "200 OK"
    assert body == b'{"status": "ok"}'
    assert headers["Cache-Control"] == "no-store"
    assert headers["Content-Length"] == str(len(body))


def test_healthz_returns_the_callers_request_id_or_a_new_one():
    assert _call(HTTP_X_REQUEST_ID="probe-7")[1]["X-Request-ID"] == "probe-7"
    assert len(_call(HTTP_X_REQUEST_ID="bad id\n")[1]["X-Request-ID"]) == 32


def test_healthz_head_has_no_body_and_other_methods_are_refused():
    status, _, body = _call("HEAD")
    assert (status, body) == ("200 OK", b"")
    status, headers, _ = _call("POST")
    assert status.startswith("405")
    assert headers["Allow"] == "GET, HEAD"


@pytest.mark.django_db
def test_every_other_path_goes_to_django():
    # Django's host validation applies again: the probe's address is not an allowed host.
    status, _, _ = _call(path="/readyz")
    assert status.startswith("400")
