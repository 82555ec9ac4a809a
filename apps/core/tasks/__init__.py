"""Background work: an app imports `enqueue`, `keel_task` and `once_per_slot` from here."""

from apps.core.tasks.periodic import once_per_slot
from apps.core.tasks.queueing import enqueue, keel_task

__all__ = ["enqueue", "keel_task", "once_per_slot"]
