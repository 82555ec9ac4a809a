"""Every Sentry event carries the request id (or the id of the request that queued the task).

The settings start Sentry when SENTRY_DSN is set; CoreConfig.ready() then adds this tag, so the
settings import nothing from the apps.
"""

from typing import TYPE_CHECKING, Any

from sentry_sdk.scope import add_global_event_processor

from apps.core.observability.request_id import current_request_id

if TYPE_CHECKING:
    from sentry_sdk._types import Event


def _tag_request_id(event: "Event", hint: dict[str, Any]) -> "Event":
    request_id = current_request_id.get()
    if request_id != "-":
        event.setdefault("tags", {})["request_id"] = request_id
    return event


def tag_events_with_request_id() -> None:
    add_global_event_processor(_tag_request_id)
