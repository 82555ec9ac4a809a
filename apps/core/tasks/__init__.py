"""Background work: an app imports `enqueue`, `house_task` and `once_per_slot` from here."""

from apps.core.tasks.periodic import once_per_slot
from apps.core.tasks.queueing import enqueue, house_task

__all__ = ["enqueue", "house_task", "once_per_slot"]
