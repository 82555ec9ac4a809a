"""Start the local stack's nginx, first stopping the workers of a predecessor that was killed.

    python -m deploy.local_nginx PIDFILE NGINX [ARGS...]

A master killed with SIGKILL leaves its workers running: they keep the ports, so the new master
cannot bind them, and they outlive `make down`. The dead master's pid is still in nginx's pid
file, and is the process group of its workers (supervisor starts each program as a group
leader), so exactly those are stopped before nginx starts again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

STALE_WAIT = 5.0


def stale_workers(master_pid: int) -> list[int]:
    """nginx processes in the process group of a master that is gone."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            if os.getpgid(pid) != master_pid or pid == master_pid:
                continue
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if command.startswith(b"nginx: "):
            found.append(pid)
    return found


def stop_stale_workers(pidfile: Path) -> None:
    try:
        master_pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return  # nginx removes its pid file when it stops normally
    if Path(f"/proc/{master_pid}").exists():
        return  # the master still runs: it is not ours to stop
    deadline = time.monotonic() + STALE_WAIT
    while (workers := stale_workers(master_pid)) and time.monotonic() < deadline:
        for pid in workers:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    pidfile.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m deploy.local_nginx PIDFILE NGINX [ARGS...]", file=sys.stderr)
        return 2
    if Path("/proc").is_dir():
        stop_stale_workers(Path(argv[0]))
    os.execv(argv[1], argv[1:])  # noqa: S606 (the rendered nginx command)
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
