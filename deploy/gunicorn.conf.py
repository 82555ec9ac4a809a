"""Gunicorn's configuration: every value through the project's one reader (config/env.py).

Used as `gunicorn -c deploy/gunicorn.conf.py config.wsgi` from the checkout. Names, types and
defaults live in config/env.py (and docs/settings.md); the process environment wins over `.env`.
The supervisor program rendered by `python -m deploy.render` sets the values that nginx depends on
(bind, timeouts, keep-alive), so both sides always agree.
"""

from __future__ import annotations

import ctypes
import gc
import json
import math
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gunicorn import glogging

from config.env import env_value

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_v2_quota(cgroup_root: Path) -> float | None:
    """CPUs allowed by cgroup v2's `cpu.max` ("<quota> <period>" or "max <period>")."""
    try:
        quota, period = (cgroup_root / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return int(quota) / int(period)


def _cgroup_v1_quota(cgroup_root: Path) -> float | None:
    """CPUs allowed by cgroup v1's CFS quota (-1 means no quota)."""
    for controller in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        directory = cgroup_root / controller
        try:
            quota = int((directory / "cpu.cfs_quota_us").read_text())
            period = int((directory / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        if quota > 0 and period > 0:
            return quota / period
        return None
    return None


def usable_cpus(cgroup_root: Path = CGROUP_ROOT, affinity: set[int] | None = None) -> int:
    """The CPUs this process may actually use: its affinity mask, capped by the cgroup CPU quota.

    `os.cpu_count()` reports the host's cores, so a container limited to 2 CPUs on a 64-core host
    would start 129 workers and thrash.
    """
    if affinity is None:
        affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    cpus = len(affinity) or os.cpu_count() or 1
    quota = _cgroup_v2_quota(cgroup_root)
    if quota is None:
        quota = _cgroup_v1_quota(cgroup_root)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return cpus


def default_workers(cpus: int) -> int:
    """Gunicorn's own recommendation: two workers per usable CPU, plus one."""
    return 2 * cpus + 1


def die_with_parent() -> None:
    """Have the kernel kill this process when its parent dies (Linux; a no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def post_fork(server: Any, worker: Any) -> None:
    # A worker whose master was killed (OOM killer, kill -9) would keep serving on the old
    # socket, unsupervised, and block forever writing its log to a pipe nobody reads; it goes
    # with its master instead, and supervisor's restart brings a fresh set.
    die_with_parent()
    if os.getppid() != worker.ppid:
        os._exit(1)


class JsonAccessLogger(glogging.Logger):
    """Access log lines that stay valid JSON whatever the client sends in its headers."""

    def now(self) -> str:
        return datetime.now(UTC).isoformat(timespec="milliseconds")

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["p"] = str(os.getpid())
        return {
            key: json.dumps(value)[1:-1] if isinstance(value, str) else value for key, value in atoms.items()
        }


# Where gunicorn listens: a unix socket in production (nginx on the same host), or host:port.
bind = [env_value("GUNICORN_BIND")]
# The socket is group-writable, so nginx's user (in the app's group) can connect.
umask = int(env_value("GUNICORN_UMASK"), 8)

# Threads per worker keep slow clients and I/O waits from blocking the worker.
worker_class = env_value("GUNICORN_WORKER_CLASS")
threads = env_value("GUNICORN_THREADS")
workers = env_value("GUNICORN_WORKERS") or default_workers(usable_cpus())

# A worker silent for this long is killed and replaced; nginx's proxy timeouts use the same value.
timeout = env_value("GUNICORN_TIMEOUT")
# On TERM or HUP, in-flight requests get this long to finish; supervisor waits longer than this.
graceful_timeout = env_value("GUNICORN_GRACEFUL_TIMEOUT")
# Longer than nginx's upstream keepalive_timeout, so nginx never reuses a connection we just closed.
keepalive = env_value("GUNICORN_KEEPALIVE")

# Recycle workers now and then so a slow leak never takes the site down; jitter spreads the restarts.
# Not too often: a new worker imports the whole app again, and recycling every 2,000 requests
# lowered every Django case of `make bench` (make soak checks that worker memory stays flat meanwhile).
max_requests = env_value("GUNICORN_MAX_REQUESTS")
max_requests_jitter = env_value("GUNICORN_MAX_REQUESTS_JITTER")

# The worker heartbeat file lives in memory: on a disk-backed /tmp a slow disk gets workers killed.
worker_tmp_dir = env_value("GUNICORN_WORKER_TMP_DIR")

# Only nginx on this host may tell us the client's scheme (X-Forwarded-Proto).
forwarded_allow_ips = env_value("GUNICORN_FORWARDED_ALLOW_IPS")

# Request line and header limits match nginx's large_client_header_buffers (8k).
limit_request_line = 8190
limit_request_field_size = 8190

# No preloading: the app is imported in each worker after the fork, so no database or Redis
# connection is ever shared between workers, and a HUP reload picks up new code.
preload_app = False

# Logs go to stdout/stderr; supervisor writes them to files and rotates them.
accesslog = env_value("GUNICORN_ACCESSLOG")
errorlog = env_value("GUNICORN_ERRORLOG")
loglevel = env_value("GUNICORN_LOG_LEVEL")
logger_class = JsonAccessLogger
# One JSON object per line; the request id is the one nginx passed in and Django answered with.
access_log_format = json.dumps(
    {
        "time": "%(t)s",
        "remote_addr": "%({x-forwarded-for}i)s",
        "method": "%(m)s",
        "path": "%(U)s",
        "query": "%(q)s",
        "status": "%(s)s",
        "bytes": "%(B)s",
        "duration_ms": "%(M)s",
        "request_id": "%({x-request-id}o)s",
        "user_agent": "%(a)s",
        "referer": "%(f)s",
        "pid": "%(p)s",
    }
)
proc_name = env_value("GUNICORN_PROC_NAME")

# Gunicorn 25's control socket (for `gunicornc`) defaults to one path in $HOME shared by every
# gunicorn of that user; the renderer puts it next to the app's socket, else it stays off.
control_socket = env_value("GUNICORN_CONTROL_SOCKET") or ""
control_socket_disable = not control_socket

# The Munin gunicorn_workers plugin counts the master's children from this file.
pidfile = env_value("GUNICORN_PIDFILE")

# --- statsd ---------------------------------------------------------------------------------
# Gunicorn's own metrics (requests, status codes, worker count) beside the app's, same prefix.
if env_value("STATSD_HOST"):
    statsd_host = f"{env_value('STATSD_HOST')}:{env_value('STATSD_PORT')}"
    statsd_prefix = env_value("STATSD_PREFIX")


def post_worker_init(worker: Any) -> None:
    # Everything the app loaded (modules, settings, URL patterns) lives as long as the worker.
    # Frozen, the garbage collector stops scanning it again on every collection during a request.
    gc.freeze()
