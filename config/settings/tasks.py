"""Celery and beat: the broker, reliability, time limits, retries, and the schedule in code.

The broker is its own Redis database, never the cache's; unset, tasks run eagerly. RabbitMQ needs
nothing but its URL (amqp://user:password@host:5672/vhost). Each setting below names what breaks
without it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config import project_apps
from config.env import env_value

from .core import TIME_ZONE

CELERY_BROKER_URL = env_value("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = env_value("CELERY_TASK_ALWAYS_EAGER")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env_value("CELERY_RESULT_BACKEND") or None
CELERY_TIMEZONE = TIME_ZONE
# Several sites (or test runs) can share one broker when each consumes its own queue.
CELERY_TASK_DEFAULT_QUEUE = env_value("CELERY_TASK_DEFAULT_QUEUE")

# Without late acks a message is acknowledged when a worker takes it: a worker killed mid-task
# (deploy, OOM, crash) loses the task for good. With them, the broker redelivers it.
CELERY_TASK_ACKS_LATE = env_value("CELERY_TASK_ACKS_LATE")
# Without it a task whose pool process died (SIGKILL, OOM killer) is acked as failed, never rerun.
CELERY_TASK_REJECT_ON_WORKER_LOST = env_value("CELERY_TASK_REJECT_ON_WORKER_LOST")
# Without it each process reserves 4 messages: with late acks they sit behind a long task
# while other workers idle, and they are all redelivered together when that worker dies.
CELERY_WORKER_PREFETCH_MULTIPLIER = env_value("CELERY_WORKER_PREFETCH_MULTIPLIER")
# Without time limits one call to a hung service holds a worker process forever. The soft limit
# raises SoftTimeLimitExceeded inside the task so it can clean up; the hard one kills the process.
CELERY_TASK_SOFT_TIME_LIMIT = env_value("CELERY_TASK_SOFT_TIME_LIMIT")
CELERY_TASK_TIME_LIMIT = env_value("CELERY_TASK_TIME_LIMIT")
# A task failing on a transient error (database, Redis, broker, network) is retried for this many
# seconds after its first failure, so an outage of minutes delays it instead of losing it; what
# still fails lands in the dead-letter table (admin: Core > Dead letters).
TASK_RETRY_WINDOW = env_value("TASK_RETRY_WINDOW")
# Retries wait 1, 2, 4... seconds with full jitter, up to this; the longest countdown the house tasks use.
TASK_RETRY_BACKOFF_MAX = env_value("TASK_RETRY_BACKOFF_MAX")
# Redis broker only: a message not acknowledged within this many seconds is handed to another
# worker, which is how the tasks of a worker whose main process died (kill -9, OOM killer, a lost
# host) run again. A worker holds a retry's message from its arrival, through its countdown, to the
# end of its run: shorter than the longest countdown plus the hard time limit, and a waiting or
# running task runs twice; much longer, and a dead worker's tasks wait that long.
CELERY_VISIBILITY_TIMEOUT = env_value("CELERY_VISIBILITY_TIMEOUT")
if TASK_RETRY_BACKOFF_MAX + CELERY_TASK_TIME_LIMIT >= CELERY_VISIBILITY_TIMEOUT:
    raise ImproperlyConfigured(
        f"CELERY_VISIBILITY_TIMEOUT ({CELERY_VISIBILITY_TIMEOUT}s) must be longer than "
        f"TASK_RETRY_BACKOFF_MAX ({TASK_RETRY_BACKOFF_MAX}s) plus "
        f"CELERY_TASK_TIME_LIMIT ({CELERY_TASK_TIME_LIMIT}s), "
        "or tasks still waiting or running are delivered twice."
    )
# Without socket timeouts a broker that accepts connections but never answers hangs the caller.
# The read timeout must stay above the 1 s a worker's BRPOP waits for a message on Redis.
CELERY_BROKER_CONNECTION_TIMEOUT = env_value("CELERY_BROKER_CONNECTION_TIMEOUT")
CELERY_BROKER_SOCKET_TIMEOUT = env_value("CELERY_BROKER_SOCKET_TIMEOUT")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # kombu looks for expired messages every 10 s but, by default, scans only on every tenth look:
    # a dead worker's tasks would wait up to 100 s more than the visibility timeout.
    "unacked_restore_throttle": 1,
    "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
    "socket_timeout": CELERY_BROKER_SOCKET_TIMEOUT,
}
# No publish retries: each retry reconnects and waits the timeouts again, so with a hung broker
# every retry multiplied a request's wait. A connection the broker closed (a restart) is replaced
# by redis-py when taken from the pool, so no retry is needed for that; a task that still cannot
# be queued is logged by enqueue() and found again by its periodic sweep.
CELERY_TASK_PUBLISH_RETRY = False
# Without it a worker started before the broker (boot order, broker restart) exits at once.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Without it the tasks running when the broker connection drops are redelivered while they still
# run (late acks), and run twice.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# Without these a slow leak in a library grows each pool process until the OOM killer picks one;
# a process is replaced after this many tasks, or after the task that takes it past the ceiling (KiB).
# Positive numbers only: `celery worker` also reads these two variables itself, as the values of
# its --max-tasks-per-child and --max-memory-per-child options, and stops on 0.
CELERY_WORKER_MAX_TASKS_PER_CHILD = env_value("CELERY_WORKER_MAX_TASKS_PER_CHILD")
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_value("CELERY_WORKER_MAX_MEMORY_PER_CHILD")
# Soft shutdown: on a cold shutdown (SIGQUIT, or SIGTERM with REMAP_SIGTERM=SIGQUIT) running tasks
# get this many seconds to finish before they are cancelled and requeued; without it a deploy
# cuts them in half.
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = env_value("CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT")
# A task delivered this many times without finishing (it kills its worker) is dropped with an
# error line instead of looping forever; counted per task id and retry in the cache.
TASK_MAX_DELIVERIES = env_value("TASK_MAX_DELIVERIES")
# Celery's own logging setup would replace ours; workers log like the web (request ids, JSON).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Beat: the schedule lives here, in code, and is synced into django-celery-beat's tables when beat
# starts (added, updated, or disabled when removed), so operators can pause or retime in the admin.
CELERY_BEAT_SCHEDULER = "apps.core.tasks.beat:CodeSyncedDatabaseScheduler"
# Without it django-celery-beat saves last run times every 3 minutes: a beat killed in between sends
# everything it sent since once more when it restarts. 1 saves them right after each send.
CELERY_BEAT_SYNC_EVERY = env_value("CELERY_BEAT_SYNC_EVERY")
# Longest sleep between beat's ticks; each tick renews the beat lock.
CELERY_BEAT_MAX_LOOP_INTERVAL = env_value("CELERY_BEAT_MAX_LOOP_INTERVAL")
# Exactly one beat sends: the one holding a lock in the cache's Redis; any other stands by. A beat
# killed without stopping keeps the lock this many seconds, so its replacement sends at most this
# long (plus one tick) after it died. Too short, and a beat stalled by a slow database loses it.
BEAT_LOCK_TIMEOUT = env_value("BEAT_LOCK_TIMEOUT")
if BEAT_LOCK_TIMEOUT <= 2 * CELERY_BEAT_MAX_LOOP_INTERVAL:
    raise ImproperlyConfigured(
        f"BEAT_LOCK_TIMEOUT ({BEAT_LOCK_TIMEOUT}s) must be more than twice CELERY_BEAT_MAX_LOOP_INTERVAL "
        f"({CELERY_BEAT_MAX_LOOP_INTERVAL}s), or the beat lock expires between two renewals."
    )
# Seconds between beat heartbeats, and the age after which /readyz reports beat as stale.
BEAT_HEARTBEAT_INTERVAL = env_value("BEAT_HEARTBEAT_INTERVAL")
BEAT_HEARTBEAT_MAX_AGE = env_value("BEAT_HEARTBEAT_MAX_AGE")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "core.clear-expired-sessions": {
        "task": "apps.core.tasks.clear_expired_sessions",
        "schedule": crontab(hour=3, minute=17),
    },
    "core.beat-heartbeat": {
        "task": "apps.core.tasks.beat_heartbeat",
        "schedule": float(BEAT_HEARTBEAT_INTERVAL),
        # Heartbeats queued while no worker runs are useless once /readyz would call them stale.
        "options": {"expire_seconds": BEAT_HEARTBEAT_MAX_AGE},
        # A start time in the past makes an entry that never ran due at once (django-celery-beat),
        # so a new beat's first heartbeat goes out as it starts, not an interval later, and /readyz
        # does not call beat stale meanwhile. Later runs keep the interval.
        "start_time": datetime(2000, 1, 1, tzinfo=UTC),
    },
    # Queue depths and beat's lag for statsd; read-only, so two runs in a slot do no harm.
    "core.sample-monitoring-gauges": {
        "task": "apps.core.monitoring_tasks.sample_monitoring_gauges",
        "schedule": 30.0,
        "options": {"expire_seconds": 25},
    },
    # Each app's own entries, from apps/<name>/schedule.py.
    **project_apps.beat_schedules(),
}
