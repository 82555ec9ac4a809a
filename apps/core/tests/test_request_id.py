import json
import logging

from django.urls import reverse

from apps.core.observability.logging import JsonFormatter, RequestIdFilter
from apps.core.observability.request_id import current_request_id


def test_a_callers_request_id_is_returned(client):
    response = client.get(reverse("home"), HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"


def test_a_request_id_is_generated_when_missing_or_malformed(client):
    generated = client.get(reverse("home"))["X-Request-ID"]
    replaced = client.get(reverse("home"), HTTP_X_REQUEST_ID="bad id\nwith newline")["X-Request-ID"]
    assert len(generated) == 32
    assert len(replaced) == 32
    assert generated != replaced


def test_json_log_lines_carry_the_request_id_and_extra_fields():
    token = current_request_id.set("req-42")
    try:
        record = logging.LogRecord("app", logging.INFO, __file__, 1, "hello %s", ("world",), None)
        record.user_id = 7
        RequestIdFilter().filter(record)
        line = JsonFormatter().format(record)
    finally:
        current_request_id.reset(token)
    payload = json.loads(line)
    assert payload["message"] == "hello world"
    assert payload["request_id"] == "req-42"
    assert payload["user_id"] == 7
    assert payload["level"] == "INFO"


def test_djangos_warning_for_a_4xx_carries_the_request_id(client, caplog):
    # Django logs "Not Found" and other 4xx after the middleware has returned: the id must still
    # reach that line, or a grep for the id across the logs misses it.
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.get("/no-such-page/", HTTP_X_REQUEST_ID="trace-404")
    assert response.status_code == 404
    (record,) = [record for record in caplog.records if record.name == "django.request"]
    RequestIdFilter().filter(record)  # as the log handler does when it writes the line
    assert record.request_id == "trace-404"
