"""Beat's schedule: declared in code (CELERY_BEAT_SCHEDULE), run from the database.

django-celery-beat's own start-up import only adds and overwrites: an entry deleted from code
keeps firing, and an operator's retiming is undone on every restart. `sync_beat_schedule`
adds what code adds, updates an entry whose code definition changed (a pause in the admin
survives), disables an entry removed from code, and never touches entries created in the admin.
It is idempotent; beat runs it on start, and so does `manage.py sync_beat_schedule`.

Exactly one beat sends: the one holding a redis-py Lock in the cache's Redis (BEAT_LOCK_TIMEOUT
seconds, renewed on each tick). Another beat stands by, saying so in its log, and takes over when
the lock is free: at once after a clean stop, at most BEAT_LOCK_TIMEOUT plus a tick after a kill.
A beat that cannot renew the lock stops sending until it holds it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import socket
from dataclasses import dataclass, field
from typing import Any

import redis.exceptions
from celery.schedules import maybe_schedule
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry
from redis.lock import Lock

from apps.core.data.cache import raw_client, raw_key
from apps.core.tasks.periodic import forget_beat, record_beat

logger = logging.getLogger(__name__)

_TAG = re.compile(r"\[code-schedule:(?P<digest>[0-9a-f]{12}|removed)\]")
_DESCRIPTION = (
    "Declared in code (CELERY_BEAT_SCHEDULE). Pause or retime it here; a change of its definition "
    "in code overrides the timing. [code-schedule:{digest}]"
)
_REMOVED = "removed"


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"{label} {len(names)}" for label, names in vars(self).items()]
        changes = [
            f"{label}: {', '.join(names)}"
            for label, names in vars(self).items()
            if names and label != "unchanged"
        ]
        return "; ".join(parts + changes)


def _digest(entry: dict[str, Any]) -> str:
    definition = {
        "task": entry["task"],
        "schedule": repr(maybe_schedule(entry["schedule"])),
        "args": list(entry.get("args") or []),
        "kwargs": entry.get("kwargs") or {},
        "options": entry.get("options") or {},
    }
    encoded = json.dumps(definition, sort_keys=True, default=repr).encode()
    return hashlib.sha256(encoded).hexdigest()[:12]


def _stored_digest(task: PeriodicTask) -> str | None:
    match = _TAG.search(task.description or "")
    return match.group("digest") if match else None


def _apply_code(task: PeriodicTask, entry: dict[str, Any], digest: str) -> None:
    fields = ModelEntry._unpack_fields(**entry)
    for name, value in fields.items():
        setattr(task, name, value)
    task.description = _DESCRIPTION.format(digest=digest)


SYNC_ATTEMPTS = 3


def sync_beat_schedule(schedule: dict[str, dict[str, Any]]) -> SyncReport:
    """Make the database's code-managed entries match `schedule`. Two beats starting together both
    insert a missing entry; the loser's insert fails on the unique name, and its retry finds the rows."""
    for attempt in range(1, SYNC_ATTEMPTS + 1):
        try:
            return _sync_beat_schedule(schedule)
        except (IntegrityError, ValidationError):
            if attempt == SYNC_ATTEMPTS:
                raise
            logger.warning("another beat synced the schedule at the same moment; syncing again")
    raise AssertionError("unreachable")


@transaction.atomic
def _sync_beat_schedule(schedule: dict[str, dict[str, Any]]) -> SyncReport:
    report = SyncReport()
    existing = {task.name: task for task in PeriodicTask.objects.select_for_update()}
    for name, entry in schedule.items():
        digest = _digest(entry)
        task = existing.get(name)
        if task is None:
            task = PeriodicTask(name=name, enabled=True)
            _apply_code(task, entry, digest)
            task.save()
            report.added.append(name)
            continue
        stored = _stored_digest(task)
        if stored == digest:
            report.unchanged.append(name)
            continue
        if stored is None:
            logger.warning("beat entry %r was created in the admin; the code schedule now manages it", name)
        if stored in (None, _REMOVED):
            # Back in code after removal (or taken over): code's entry runs again.
            task.enabled = True
        _apply_code(task, entry, digest)
        task.save()
        report.updated.append(name)
    for name, task in existing.items():
        stored = _stored_digest(task)
        if name in schedule or stored in (None, _REMOVED):
            continue
        task.enabled = False
        task.description = _DESCRIPTION.format(digest=_REMOVED)
        task.save(update_fields=["enabled", "description"])
        report.disabled.append(name)
    if report.added or report.updated or report.disabled:
        logger.info("beat schedule synced from code: %s", report)
    return report


BEAT_LOCK_KEY = "beat:lock"


class CodeSyncedDatabaseScheduler(DatabaseScheduler):
    """django-celery-beat's DatabaseScheduler, with the code schedule synced and the beat lock held,
    as described above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.instance = f"{socket.gethostname()}:{os.getpid()}"
        self.sending = False
        self._lock: Lock | None = None
        self._standby_logged = False
        self._reread = False
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        report = sync_beat_schedule(self.app.conf.beat_schedule)
        if not (report.added or report.updated or report.disabled):
            logger.info("beat schedule in the database matches the code: %s", report)
        self.install_default_entries(self.schedule)

    def schedule_changed(self) -> bool:
        changed = bool(super().schedule_changed())
        reread, self._reread = self._reread, False
        return changed or reread

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._may_send():
            return float(self.max_interval)
        return float(super().tick(*args, **kwargs))

    def close(self) -> None:
        try:
            super().close()
        finally:
            with contextlib.suppress(redis.exceptions.RedisError):
                if self.sending and self._lock is not None:
                    # A clean stop frees the lock at once: the replacement need not wait for it to expire.
                    self._lock.release()
                    logger.info("beat %s released the beat lock", self.instance)
                forget_beat(self.instance)
            self.sending = False

    def _beat_lock(self) -> Lock | None:
        if self._lock is None:
            client = raw_client()
            if client is None:
                return None
            self._lock = client.lock(
                raw_key(BEAT_LOCK_KEY), timeout=settings.BEAT_LOCK_TIMEOUT, thread_local=False
            )
        return self._lock

    def _hold(self, lock: Lock) -> bool:
        with contextlib.suppress(redis.exceptions.LockNotOwnedError):
            # Still ours (or ours again after Redis failed for a moment): renew it.
            if lock.owned():
                return bool(lock.reacquire())
        return bool(lock.acquire(blocking=False, token=self.instance))

    def _may_send(self) -> bool:
        lock = self._beat_lock()
        if lock is None:
            # The file cache of a first run: no lock to share (config.celery warned at start).
            return True
        try:
            holds = self._hold(lock)
        except redis.exceptions.RedisError as error:
            if self.sending:
                logger.error(
                    "beat %s stops sending: the beat lock cannot be renewed (%s); another beat may take over",
                    self.instance,
                    error,
                )
            self.sending = False
            return False
        if holds and not self.sending:
            logger.info("beat %s holds the beat lock: sending periodic tasks", self.instance)
            # Another beat may have sent while this one stood by: read the last run times from the
            # database again before sending anything. Read now, not in the tick: the heap is then
            # rebuilt once, from the entries just read.
            self._reread = True
            _ = self.schedule
            self._standby_logged = False
        elif not holds and (self.sending or not self._standby_logged):
            logger.warning(
                "another beat (%s) holds the beat lock: beat %s stands by and sends nothing until the "
                "lock is free (at most BEAT_LOCK_TIMEOUT=%ss after that beat stops)",
                self._holder(lock),
                self.instance,
                settings.BEAT_LOCK_TIMEOUT,
            )
            self._standby_logged = True
        self.sending = holds
        with contextlib.suppress(redis.exceptions.RedisError):
            record_beat(self.instance, sending=holds)
        return holds

    @staticmethod
    def _holder(lock: Lock) -> str:
        with contextlib.suppress(redis.exceptions.RedisError):
            return (lock.redis.get(lock.name) or b"unknown").decode()
        return "unknown"
