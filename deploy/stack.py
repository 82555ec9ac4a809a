"""The whole production stack on one machine, in the foreground: `make up`, `make down`, `make status`.

    python -m deploy.stack up       # render, migrate, collectstatic, then supervisord in the foreground
    python -m deploy.stack down     # stop every program and supervisord (from another terminal)
    python -m deploy.stack status   # supervisorctl status

`up` runs nginx (http://127.0.0.1:8080/ by default), gunicorn, the Celery worker and beat under
supervisord with the production settings, against the PostgreSQL and Redis named by
DATABASE_URL and REDIS_URL. Ctrl-C stops everything.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from deploy import precompress, render

SUPERVISORD_STOP_WAIT = 120


def _fail(message: str) -> int:
    print(f"stack: {message}", file=sys.stderr)
    return 2


def _local_secret_key(build_dir: Path) -> str:
    """A secret key kept in the build folder, so sessions survive a restart of the local stack."""
    path = build_dir / "secret_key"
    if not path.exists():
        build_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


def stack_env(env: Mapping[str, str]) -> dict[str, str]:
    """The local stack's environment: the operator's, plus what production settings require."""
    stack = dict(env)
    # The stack runs as production does: production settings, whatever .env says for development.
    stack["DJANGO_SETTINGS_MODULE"] = "config.settings.production"
    stack["DEBUG"] = "false"
    context = render.build_context(stack)
    build_dir = Path(str(context["BUILD_DIR"]))
    if not stack.get("SECRET_KEY"):
        stack["SECRET_KEY"] = _local_secret_key(build_dir)
    stack.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    if not context["NGINX_TLS"]:
        # Plain HTTP only: Django must not redirect to an HTTPS server that is not there.
        stack.setdefault("SECURE_SSL_REDIRECT", "false")
    # nginx is the one proxy in front of Django; throttles key on the address nginx saw.
    stack.setdefault("NUM_PROXIES", "1")
    stack.setdefault("PYTHONUNBUFFERED", "1")
    return stack


def _supervisor_conf(context: Mapping[str, object]) -> Path:
    return Path(str(context["BUILD_DIR"])) / "supervisor" / "supervisord.conf"


def _supervisord_pid(context: Mapping[str, object]) -> int | None:
    """The pid of this stack's running supervisord, if there is one."""
    pidfile = Path(str(context["RUN_DIR"])) / "supervisord.pid"
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def up(env: Mapping[str, str]) -> int:
    missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not env.get(name, "").strip()]
    if missing:
        return _fail(
            f"{' and '.join(missing)} not set. The stack runs against real services; export them or "
            "put them in .env, e.g.\n"
            "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/app\n"
            "  REDIS_URL=redis://127.0.0.1:6379"
        )
    try:
        stack = stack_env(env)
        context = render.build_context(stack)
        if _supervisord_pid(context):
            return _fail("the stack is already running; stop it with `make down` first.")
        context, files = render.render(stack)
        render.validate_nginx(context)
        render.validate_supervisor(context)
    except render.RenderError as error:
        return _fail(str(error))
    print(f"stack: rendered {len(files)} files into {context['BUILD_DIR']}")

    python = sys.executable
    app_dir = Path(str(context["APP_DIR"]))
    # Independent steps, run side by side: the stack starts sooner.
    steps = {
        " ".join(command): subprocess.Popen([python, "manage.py", *command], cwd=app_dir, env=stack)
        for command in (["migrate", "--no-input"], ["collectstatic", "--no-input", "--verbosity", "0"])
    }
    print(f"stack: manage.py {' and '.join(steps)}", flush=True)
    failed = [name for name, process in steps.items() if process.wait() != 0]
    if failed:
        return _fail(f"manage.py {' and '.join(failed)} failed; the stack was not started.")
    precompress.precompress(Path(str(context["STATIC_ROOT"])))

    supervisord = str(Path(python).parent / "supervisord")
    scheme, listen = ("https", "NGINX_LISTEN_TLS") if context["NGINX_TLS"] else ("http", "NGINX_LISTEN")
    address = context[listen][0]
    print(f"stack: starting supervisord; the site is at {scheme}://{address}/  (Ctrl-C stops everything)")
    sys.stdout.flush()
    # supervisord replaces this process, so Ctrl-C reaches it directly and it stops every program.
    os.execve(supervisord, [supervisord, "-c", str(_supervisor_conf(context))], stack)  # noqa: S606
    return 0  # pragma: no cover


def _supervisorctl(context: Mapping[str, object], *args: str) -> subprocess.CompletedProcess[str]:
    supervisorctl = str(Path(sys.executable).parent / "supervisorctl")
    return subprocess.run(
        [supervisorctl, "-c", str(_supervisor_conf(context)), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def down(env: Mapping[str, str]) -> int:
    context = render.build_context(stack_env(env))
    pid = _supervisord_pid(context)
    if pid is None:
        print("stack: not running")
        return 0
    _supervisorctl(context, "shutdown")
    deadline = time.monotonic() + SUPERVISORD_STOP_WAIT
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            print("stack: stopped")
            return 0
        time.sleep(0.2)
    return _fail(f"supervisord (pid {pid}) still running after {SUPERVISORD_STOP_WAIT} s")


def status(env: Mapping[str, str]) -> int:
    context = render.build_context(stack_env(env))
    if _supervisord_pid(context) is None:
        print("stack: not running (start it with `make up`)")
        return 3
    result = _supervisorctl(context, "status")
    print(result.stdout, end="")
    return result.returncode


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    commands = {"up": up, "down": down, "status": status}
    if len(args) != 1 or args[0] not in commands:
        return _fail("usage: python -m deploy.stack up|down|status")
    return commands[args[0]](render.load_env())


if __name__ == "__main__":
    sys.exit(main())
