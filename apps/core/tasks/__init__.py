"""Background work: the task base class and enqueue-on-commit (queueing), periodic slots and beat's
heartbeat and roll call (periodic), beat's scheduler and lock (beat), what the queues and beat look
like now (monitoring), and per-task metrics (task_metrics).

What an app needs is importable from here:

    from apps.core.tasks import enqueue, keel_task, once_per_slot
"""

from apps.core.tasks.periodic import once_per_slot
from apps.core.tasks.queueing import enqueue, keel_task

__all__ = ["enqueue", "keel_task", "once_per_slot"]
