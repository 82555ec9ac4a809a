"""Reads go to a replica, writes to the primary, and a client reads its own writes.

Only a request served by `ReadYourWritesMiddleware` reads from a replica, and only while
nothing in it has written, no transaction is open and its client has not written in the last
DATABASE_READ_YOUR_WRITES_SECONDS (a cookie says so). Everything else reads from the primary:
Celery tasks, management commands, migrations and the shell, which must never act on data
that is a little behind. `use_primary()` pins any block of code to the primary.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

PRIMARY = DEFAULT_DB_ALIAS
# Set on the response after a write; its presence sends the client's reads to the primary.
RECENT_WRITE_COOKIE = "recent_write"


@dataclass
class RequestRouting:
    """What one request reads from. Mutable, so a write seen in a copied context still counts."""

    replica: str | None
    wrote: bool = False


_request_routing: ContextVar[RequestRouting | None] = ContextVar("request_routing", default=None)
_pinned_to_primary: ContextVar[bool] = ContextVar("pinned_to_primary", default=False)


@contextmanager
def request_routing(*, recent_write: bool) -> Iterator[RequestRouting]:
    """Route the reads of the request being served; used by ReadYourWritesMiddleware."""
    replicas = [] if recent_write else settings.DATABASE_REPLICAS
    # Spreading load, not a secret: any replica will do.
    routing = RequestRouting(replica=random.choice(replicas) if replicas else None)  # noqa: S311
    token = _request_routing.set(routing)
    try:
        yield routing
    finally:
        _request_routing.reset(token)


@contextmanager
def use_primary() -> Iterator[None]:
    """Read from the primary inside this block, e.g. to check a value just before writing it."""
    token = _pinned_to_primary.set(True)
    try:
        yield
    finally:
        _pinned_to_primary.reset(token)


class PrimaryReplicaRouter:
    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        routing = _request_routing.get()
        if routing is None or routing.replica is None or routing.wrote or _pinned_to_primary.get():
            return PRIMARY
        # Inside a transaction the primary holds what the transaction wrote or locked.
        if connections[PRIMARY].in_atomic_block:
            return PRIMARY
        return routing.replica

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        routing = _request_routing.get()
        if routing is not None:
            routing.wrote = True
        return PRIMARY

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        # A replica holds the primary's rows: an object read from one may point at the other.
        same_data = {PRIMARY, *settings.DATABASE_REPLICAS}
        if obj1._state.db in same_data and obj2._state.db in same_data:
            return True
        return None

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        # Replicas are read-only copies; they get the schema by replication.
        if db in settings.DATABASE_REPLICAS:
            return False
        return None
