"""What the task fault tests' workers run (`--include=tests.faults.tasks`): a probe that writes one
database row per run, a task whose dependency the test holds down, and an email backend that dies
right after sending. Effects other than the probe's rows go to database 2 of the test's private Redis.
"""

import os
import signal
from collections.abc import Sequence

import redis
from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection

from apps.core.tasks import house_task

DEPENDENCY_DOWN = "dependency-down"


def effects() -> redis.Redis:
    return redis.Redis.from_url(f"{settings.REDIS_URL}/2")


@house_task
def write_probe_row(key: str) -> None:
    """One row per key; a second run of the same message shows as runs = 2, not as a second row."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO fault_probe (key, runs) VALUES (%s, 1) "
            "ON CONFLICT (key) DO UPDATE SET runs = fault_probe.runs + 1",
            [key],
        )


@house_task
def call_flaky_dependency(key: str) -> None:
    """Fails with a transient error for as long as the test holds its dependency down."""
    store = effects()
    store.incr(f"{key}:attempts")
    if store.exists(DEPENDENCY_DOWN):
        raise ConnectionError("the dependency is down")
    store.incr(f"{key}:runs")


class SendThenDieEmailBackend(BaseEmailBackend):
    """Records each mail as sent, then SIGKILLs its own process after the first one: a worker that
    dies between sending a mail and recording that it did."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        store = effects()
        for message in email_messages:
            for recipient in message.to:
                store.rpush(f"mail:{recipient}", message.subject)
        if store.set("mail:killed-once", 1, nx=True):
            os.kill(os.getpid(), signal.SIGKILL)
        return len(email_messages)
