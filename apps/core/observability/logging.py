"""Log record helpers: the request id on every line, and a one-object-per-line JSON format."""

import json
import logging
from datetime import UTC, datetime

from apps.core.observability.request_id import current_request_id

# Attributes every LogRecord has; anything else on a record was passed through `extra=`.
_STANDARD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request (or task) it was logged under."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            request_id = current_request_id.get()
            if request_id == "-":
                # django.request's 4xx lines are written after the middleware has reset the context.
                request_id = getattr(getattr(record, "request", None), "request_id", "-")
            record.request_id = request_id
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log shippers parse without a grok pattern."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", current_request_id.get()),
        }
        payload.update(
            {key: value for key, value in record.__dict__.items() if key not in _STANDARD_ATTRIBUTES}
        )
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)
