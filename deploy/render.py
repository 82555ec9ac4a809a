"""Render the deploy templates from the environment, validate them with nginx and supervisor.

    python -m deploy.render            # or: make render

Reads the process environment over `.env` (like Django does), renders the Jinja2 templates in
deploy/nginx/ and deploy/supervisor/ into the build folder (DEPLOY_BUILD_DIR, default
build/deploy/), checks the nginx files with `nginx -t` and the supervisor files with
supervisor's own parser, and prints where each file went.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from config.env import EnvError, env_is_set, env_value, environment

DEPLOY_DIR = Path(__file__).resolve().parent
PROJECT_DIR = DEPLOY_DIR.parent

_RATE = re.compile(r"^\d+r/[sm]$")
_DURATION = re.compile(r"^\d+(ms|s|m)?$")

# Block tags take no line of their own in the output; a name the context lacks is an error, not "".
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(DEPLOY_DIR),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,  # noqa: S701 (nginx and supervisor files, not HTML)
)


# The reader's values that the templates use as they are.
AS_READ = (
    *("NGINX_WORKER_PROCESSES", "NGINX_MIME_TYPES", "NGINX_CLIENT_MAX_BODY_SIZE", "NGINX_RESOLVER"),
    *("NGINX_TLS_CERT", "NGINX_TLS_KEY", "NGINX_TLS_DHPARAM", "NGINX_TLS_STAPLING"),
    *("NGINX_UPSTREAM_MAX_FAILS", "NGINX_UPSTREAM_FAIL_TIMEOUT", "NGINX_MICROCACHE", "NGINX_MICROCACHE_TTL"),
    *("NGINX_LIMIT_REQ", "NGINX_LIMIT_LOGIN_RATE", "NGINX_LIMIT_LOGIN_BURST"),
    *("NGINX_LIMIT_API_RATE", "NGINX_LIMIT_API_BURST", "CELERY_WORKER_CONCURRENCY"),
)


class RenderError(Exception):
    """A template or a value is wrong; the message says which and how to fix it."""


def load_env() -> dict[str, str]:
    """The process environment over `.env`, read as the settings and gunicorn read it."""
    return environment()


def build_context(env: Mapping[str, str]) -> dict[str, Any]:
    """Every value the templates use: the reader's (config/env.py), for the target's profile.

    DEPLOY_TARGET=local (default) keeps every path inside the build folder, so the local stack
    runs as any user on free ports. DEPLOY_TARGET=host uses the paths of a production host.
    The defaults that depend on the target or on other values are derived here.
    """

    target = None  # DEPLOY_TARGET, the profile of every value read after it

    def get(name: str, local_default: object = None, host_default: object = None) -> Any:
        try:
            value = env_value(name, profile=target, environ=env)
        except EnvError as error:
            raise RenderError(str(error)) from None
        if value is None:  # a default the reader leaves to the renderer: it depends on the target
            return local_default if local else host_default
        return value.expanduser().resolve() if isinstance(value, Path) else value

    target = get("DEPLOY_TARGET")
    if target not in {"local", "host"}:
        raise RenderError(f"DEPLOY_TARGET={target!r}: use local or host.")
    local = target == "local"

    def in_app(name: str) -> Path:
        # The reader's default lies in this checkout; the programs run from DEPLOY_APP_DIR.
        path = get(name)
        return path if env_is_set(name, environ=env) else app_dir / path.relative_to(PROJECT_DIR)

    slug = re.sub(r"[^a-z0-9_]", "_", get("PROJECT_SLUG").lower()) or "app"
    app_dir, build_dir = get("DEPLOY_APP_DIR"), get("DEPLOY_BUILD_DIR")
    run_dir = get("DEPLOY_RUN_DIR", build_dir / "run", Path(f"/run/{slug}"))
    log_dir = get("DEPLOY_LOG_DIR", build_dir / "log", Path(f"/var/log/{slug}"))

    bind = (
        get("GUNICORN_BIND") if env_is_set("GUNICORN_BIND", environ=env) else f"unix:{run_dir}/gunicorn.sock"
    )
    keepalive = get("GUNICORN_KEEPALIVE")
    if keepalive < 2:
        raise RenderError(
            "GUNICORN_KEEPALIVE must be at least 2 s: nginx keeps idle connections to gunicorn."
        )
    # What nginx is rendered against; gunicorn reads everything else from the environment itself.
    gunicorn = {
        "GUNICORN_BIND": bind,
        "GUNICORN_TIMEOUT": get("GUNICORN_TIMEOUT"),
        "GUNICORN_GRACEFUL_TIMEOUT": get("GUNICORN_GRACEFUL_TIMEOUT"),
        "GUNICORN_KEEPALIVE": keepalive,
        "GUNICORN_CONTROL_SOCKET": get("GUNICORN_CONTROL_SOCKET") or run_dir / "gunicorn.ctl",
        "GUNICORN_PIDFILE": get("GUNICORN_PIDFILE") or run_dir / "gunicorn.pid",
    }

    tls, listen_http, listen_https = (get(name) for name in ("NGINX_TLS", "NGINX_LISTEN", "NGINX_LISTEN_TLS"))
    https_port = listen_https[0].rsplit(":", 1)[-1] if tls else "443"
    http_port = listen_http[0].rsplit(":", 1)[-1]
    if tls and not (get("NGINX_TLS_CERT") and get("NGINX_TLS_KEY")):
        raise RenderError(
            "NGINX_TLS is on but NGINX_TLS_CERT / NGINX_TLS_KEY are not set; set both to the "
            "certificate chain and key files, or set NGINX_TLS=off for a plain-HTTP stack."
        )
    for name, pattern, advice in (
        ("NGINX_LIMIT_LOGIN_RATE", _RATE, "an nginx rate; use e.g. 10r/m or 20r/s"),
        ("NGINX_LIMIT_API_RATE", _RATE, "an nginx rate; use e.g. 10r/m or 20r/s"),
        ("NGINX_MICROCACHE_TTL", _DURATION, "an nginx time; use e.g. 1s or 500ms"),
    ):
        if not pattern.match(get(name)):
            raise RenderError(f"{name}={get(name)!r} is not {advice}.")

    worker_stop = get("CELERY_WORKER_STOP_TIMEOUT")
    for name in ("CELERY_TASK_TIME_LIMIT", "CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT"):
        if worker_stop <= get(name):
            raise RenderError(
                f"CELERY_WORKER_STOP_TIMEOUT={worker_stop} must be longer than {name}={get(name):g}, "
                "or supervisor kills the worker while tasks are still finishing."
            )
    programs = get("DEPLOY_PROGRAMS")
    if unknown := set(programs) - {"web", "worker", "beat"}:
        raise RenderError(
            f"DEPLOY_PROGRAMS names {', '.join(sorted(unknown))}; choose from web, worker, beat."
        )

    nginx_bin = get("NGINX_BIN") or shutil.which("nginx") or "/usr/sbin/nginx"
    nginx_version = installed_nginx_version(nginx_bin)
    running_as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    hsts = f"max-age={get('SECURE_HSTS_SECONDS')}"
    hsts += "; includeSubDomains" if get("SECURE_HSTS_INCLUDE_SUBDOMAINS") else ""
    hsts += "; preload" if get("SECURE_HSTS_PRELOAD") else ""

    return {
        # The reader's values that the templates use as they are, under their own names.
        **{name: get(name) for name in AS_READ},
        "TARGET": target,
        "LOCAL": local,
        "SLUG": slug,
        "APP_DIR": app_dir,
        "BUILD_DIR": build_dir,
        "RUN_DIR": run_dir,
        "LOG_DIR": log_dir,
        "VENV_BIN": (get("DEPLOY_VENV") or app_dir / ".venv") / "bin",
        "STATIC_ROOT": in_app("STATIC_ROOT"),
        "MEDIA_ROOT": in_app("MEDIA_ROOT"),
        "ADMIN_URL": "/" + get("ADMIN_URL").strip("/") + "/",
        # nginx
        "NGINX_BIN": nginx_bin,
        "NGINX_USER": get("NGINX_USER", "root" if running_as_root else "", ""),
        "NGINX_LOG_DIR": get("NGINX_LOG_DIR", log_dir, Path("/var/log/nginx")),
        "NGINX_CACHE_DIR": get(
            "NGINX_CACHE_DIR", run_dir / "nginx" / "cache", Path(f"/var/cache/nginx/{slug}")
        ),
        "NGINX_ACME_ROOT": get("NGINX_ACME_ROOT", build_dir / "acme", Path("/var/www/acme")),
        "NGINX_SERVER_NAMES": " ".join(
            get("NGINX_SERVER_NAMES")
            or [host for host in get("ALLOWED_HOSTS") if host != "*"]
            or ["localhost", "127.0.0.1"]
        ),
        # gunicorn and nginx spell a unix socket the same way ("unix:/path"); a bare port means localhost.
        "UPSTREAM_SERVERS": [
            f"127.0.0.1:{server}" if server.isdigit() else server
            for server in get("NGINX_UPSTREAM_SERVERS") or [bind]
        ],
        "UPSTREAM_KEEPALIVE_TIMEOUT": keepalive - (1 if keepalive <= 10 else 5),
        "GUNICORN_KEEPALIVE": keepalive,
        "PROXY_TIMEOUT": gunicorn["GUNICORN_TIMEOUT"],
        "NGINX_TLS": tls,
        "NGINX_LISTEN": listen_http,
        "NGINX_LISTEN_TLS": listen_https,
        # nginx 1.25.1 moved HTTP/2 from a `listen` flag to its own directive.
        "HTTP2_DIRECTIVE": nginx_version >= (1, 25, 1),
        # ssl_reject_handshake arrived in nginx 1.19.4 (Debian 11 and Ubuntu 22.04 ship 1.18).
        "REJECT_HANDSHAKE": nginx_version >= (1, 19, 4),
        "HTTPS_PORT_SUFFIX": "" if https_port == "443" else f":{https_port}",
        "HTTP_PORT_SUFFIX": "" if http_port == "80" else f":{http_port}",
        "HSTS": hsts,
        "NGINX_LIMIT_LOGIN_RETRY_AFTER": _retry_after(get("NGINX_LIMIT_LOGIN_RATE")),
        "NGINX_LIMIT_API_RETRY_AFTER": _retry_after(get("NGINX_LIMIT_API_RATE")),
        # supervisor
        "PROGRAMS": ",".join(programs),
        "DEPLOY_USER": get("DEPLOY_USER", "", slug),
        "WEB_ENVIRONMENT": ",".join(
            f'{key}="{_supervisor_value(str(value))}"' for key, value in sorted(gunicorn.items())
        ),
        "WEB_STOP_TIMEOUT": gunicorn["GUNICORN_GRACEFUL_TIMEOUT"] + 10,
        "WORKER_STOP_TIMEOUT": worker_stop,
    }


def installed_nginx_version(nginx_bin: str) -> tuple[int, ...]:
    """The version of the nginx that will run the configs; a recent one if it is not installed here."""
    try:
        result = subprocess.run([nginx_bin, "-v"], capture_output=True, text=True, check=False, timeout=10)
    except OSError:
        return (1, 26, 0)
    match = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", result.stderr + result.stdout)
    return tuple(int(part) for part in match.groups()) if match else (1, 26, 0)


def _retry_after(rate: str) -> int:
    """Whole seconds until a rate of "10r/m" or "20r/s" lets one more request through."""
    count, _, unit = rate.partition("r/")
    return max(1, math.ceil((60 if unit == "m" else 1) / max(1, int(count))))


def _supervisor_value(value: str) -> str:
    # supervisor expands %(name)s in values and reads quotes as delimiters.
    return value.replace("%", "%%").replace('"', '\\"')


# --- rendering ---------------------------------------------------------------------------------


def outputs(context: Mapping[str, Any]) -> dict[str, Path]:
    """Template (in deploy/) -> rendered file, in a tree shaped like /etc/nginx and /etc/supervisor."""
    build, slug = context["BUILD_DIR"], context["SLUG"]
    nginx, supervisor = build / "nginx", build / "supervisor"
    files = {
        "nginx/nginx.conf.j2": nginx / "nginx.conf",
        "nginx/site.conf.j2": nginx / "sites-available" / f"{slug}.conf",
    }
    for snippet in sorted((DEPLOY_DIR / "nginx" / "snippets").glob("*.j2")):
        files[f"nginx/snippets/{snippet.name}"] = nginx / "snippets" / slug / snippet.stem
    files["supervisor/supervisord.conf.j2"] = supervisor / "supervisord.conf"
    for program in ["group", *context["PROGRAMS"].split(","), *(["nginx"] if context["LOCAL"] else [])]:
        files[f"supervisor/{program}.conf.j2"] = supervisor / "conf.d" / f"{slug}-{program}.conf"
    return files


def render_template(name: str, context: Mapping[str, Any]) -> str:
    """One template filled from `context`; a mistake in it names the file and line."""
    try:
        return TEMPLATES.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as error:
        raise RenderError(f"{name}:{error.lineno}: {error.message}") from None
    except jinja2.UndefinedError as error:
        # Jinja2 rewrites the traceback so the template's own frame carries its line.
        lines = [
            frame.lineno
            for frame in traceback.extract_tb(error.__traceback__)
            if frame.filename.endswith(name)
        ]
        where = f"{name}:{lines[-1]}" if lines else name
        raise RenderError(f"{where}: {error.message}; the renderer has no such value") from None


def render(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Path]]:
    """Write every rendered file; return the context and where each template went."""
    context = build_context(env)
    files = outputs(context)
    # Stale files from an earlier render (say, with TLS on) must not be included by accident.
    for stale in ("nginx", "supervisor"):
        shutil.rmtree(context["BUILD_DIR"] / stale, ignore_errors=True)
    for template, target in files.items():
        text = render_template(template, context)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    if context["LOCAL"]:
        for directory in ("LOG_DIR", "NGINX_LOG_DIR", "NGINX_ACME_ROOT"):
            context[directory].mkdir(parents=True, exist_ok=True)
        (context["RUN_DIR"] / "nginx").mkdir(parents=True, exist_ok=True)
    return context, files


# --- validation by the real programs -----------------------------------------------------------


def validate_nginx(context: Mapping[str, Any]) -> None:
    conf = context["BUILD_DIR"] / "nginx" / "nginx.conf"
    (context["RUN_DIR"] / "nginx").mkdir(parents=True, exist_ok=True)
    nginx = context["NGINX_BIN"]
    if not Path(nginx).exists():
        raise RenderError(f"nginx not found at {nginx}; install it (apt-get install nginx) or set NGINX_BIN.")
    error_log = context["NGINX_LOG_DIR"] / "nginx-error.log"
    result = subprocess.run(
        [nginx, "-t", "-q", "-e", str(error_log), "-c", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RenderError(f"nginx -t rejected {conf}:\n{result.stderr.strip()}")


def validate_supervisor(context: Mapping[str, Any]) -> None:
    conf = context["BUILD_DIR"] / "supervisor" / "supervisord.conf"
    try:
        from supervisor.options import ServerOptions
    except ImportError:
        raise RenderError(
            "supervisor is not importable by this Python; run with the project's .venv/bin/python "
            "or install supervisor (apt-get install supervisor) to validate the supervisor files."
        ) from None
    options = ServerOptions()
    try:
        options.realize(args=["-c", str(conf)])
    except SystemExit:
        raise RenderError(f"supervisor rejected {conf} (its message is above).") from None
    except ValueError as error:
        raise RenderError(f"supervisor rejected {conf}: {error}") from None
    programs = {process.name for group in options.process_group_configs for process in group.process_configs}
    missing = set(context["PROGRAMS"].split(",")) - programs
    if missing:
        raise RenderError(f"supervisor read {conf} but found no program {', '.join(sorted(missing))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--no-validate", action="store_true", help="skip nginx -t and supervisor's parser")
    args = parser.parse_args(argv)
    try:
        context, files = render(load_env())
        if not args.no_validate:
            validate_nginx(context)
            validate_supervisor(context)
    except RenderError as error:
        print(f"render: {error}", file=sys.stderr)
        return 2
    print(f"Rendered for DEPLOY_TARGET={context['TARGET']}:")
    for template, target in files.items():
        print(f"  deploy/{template}  ->  {target}")
    if not args.no_validate:
        print("nginx -t: ok; supervisor: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
