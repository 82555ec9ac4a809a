"""Error tracking with Sentry, switched on by SENTRY_DSN. Imported by the settings, so no models here."""

from typing import TYPE_CHECKING, Any

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration

from apps.core.request_id import current_request_id

if TYPE_CHECKING:
    from sentry_sdk._types import Event


def _tag_request_id(event: "Event", hint: dict[str, Any]) -> "Event":
    """Every event carries the request id (or the id of the request that queued the task)."""
    request_id = current_request_id.get()
    if request_id != "-":
        event.setdefault("tags", {})["request_id"] = request_id
    return event


def init_sentry(
    *,
    dsn: str,
    environment: str,
    release: str | None,
    sample_rate: float,
    traces_sample_rate: float,
    send_default_pii: bool,
) -> None:
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        sample_rate=sample_rate,
        traces_sample_rate=traces_sample_rate,
        # Off by default: no user emails, IP addresses, cookies or request bodies leave the site.
        send_default_pii=send_default_pii,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        before_send=_tag_request_id,
    )
