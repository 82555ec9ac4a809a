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
from dataclasses import dataclass
from pathlib import Path

import jinja2

DEPLOY_DIR = Path(__file__).resolve().parent
PROJECT_DIR = DEPLOY_DIR.parent

_RATE = re.compile(r"^\d+r/[sm]$")
_DURATION = re.compile(r"^\d+(ms|s|m)?$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

# Block tags take no line of their own in the output; a name the context lacks is an error, not "".
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(DEPLOY_DIR),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,  # noqa: S701 (nginx and supervisor files, not HTML)
)


class RenderError(Exception):
    """A template or a value is wrong; the message says which and how to fix it."""


# --- environment -------------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines of a `.env` file (comments, blank lines and `export ` are allowed)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.removeprefix("export ").split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_env(project_dir: Path = PROJECT_DIR, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment over `.env`: an operator's export always wins, as in Django."""
    environ = os.environ if environ is None else environ
    return {**read_env_file(project_dir / ".env"), **environ}


def as_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    if value is None:
        return default
    value = value.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise RenderError(f"{name}={value!r} is not a boolean; use on/off, true/false or 1/0.")


def as_int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise RenderError(f"{name}={value!r} is not a whole number.") from None


def _words(value: str) -> list[str]:
    return [word for word in re.split(r"[\s,]+", value.strip()) if word]


# --- the values the templates see --------------------------------------------------------------


def build_context(env: Mapping[str, str], project_dir: Path = PROJECT_DIR) -> dict[str, object]:
    """Every value the templates use, from the environment with defaults for the chosen target.

    DEPLOY_TARGET=local (default) keeps every path inside the build folder, so the local stack
    runs as any user on free ports. DEPLOY_TARGET=host uses the paths of a production host.
    """
    target = env.get("DEPLOY_TARGET", "local").strip() or "local"
    if target not in {"local", "host"}:
        raise RenderError(f"DEPLOY_TARGET={target!r}: use local or host.")
    local = target == "local"
    slug = re.sub(r"[^a-z0-9_]", "_", env.get("PROJECT_SLUG", "keel").strip().lower()) or "keel"

    def text(name: str, default: str = "") -> str:
        return env.get(name, "").strip() or default

    def path(name: str, default: Path) -> Path:
        value = text(name)
        return Path(value).expanduser().resolve() if value else default

    app_dir = path("DEPLOY_APP_DIR", project_dir)
    build_dir = path("DEPLOY_BUILD_DIR", project_dir / "build" / "deploy")
    run_dir = path("DEPLOY_RUN_DIR", build_dir / "run" if local else Path(f"/run/{slug}"))
    log_dir = path("DEPLOY_LOG_DIR", build_dir / "log" if local else Path(f"/var/log/{slug}"))

    gunicorn_bind = text("GUNICORN_BIND", f"unix:{run_dir / 'gunicorn.sock'}")
    gunicorn_timeout = as_int(env, "GUNICORN_TIMEOUT", 30)
    graceful_timeout = as_int(env, "GUNICORN_GRACEFUL_TIMEOUT", 30)
    gunicorn_keepalive = as_int(env, "GUNICORN_KEEPALIVE", 65)
    if gunicorn_keepalive < 2:
        raise RenderError(
            "GUNICORN_KEEPALIVE must be at least 2 s: nginx keeps idle connections to gunicorn."
        )

    tls = as_bool(env, "NGINX_TLS", default=not local)
    listen_http = _words(text("NGINX_LISTEN")) or (["127.0.0.1:8080"] if local else ["80", "[::]:80"])
    listen_https = _words(text("NGINX_LISTEN_TLS")) or (["127.0.0.1:8443"] if local else ["443", "[::]:443"])
    https_port = listen_https[0].rsplit(":", 1)[-1] if tls else "443"
    http_port = listen_http[0].rsplit(":", 1)[-1]
    if tls and not (text("NGINX_TLS_CERT") and text("NGINX_TLS_KEY")):
        raise RenderError(
            "NGINX_TLS is on but NGINX_TLS_CERT / NGINX_TLS_KEY are not set; set both to the "
            "certificate chain and key files, or set NGINX_TLS=off for a plain-HTTP stack."
        )

    rates = {name: text(name, default) for name, default in _RATE_DEFAULTS.items()}
    for name, rate in rates.items():
        if not _RATE.match(rate):
            raise RenderError(f"{name}={rate!r} is not an nginx rate; use e.g. 10r/m or 20r/s.")
    microcache_ttl = text("NGINX_MICROCACHE_TTL", "1s")
    if not _DURATION.match(microcache_ttl):
        raise RenderError(
            f"NGINX_MICROCACHE_TTL={microcache_ttl!r} is not an nginx time; use e.g. 1s or 500ms."
        )

    hsts = f"max-age={as_int(env, 'SECURE_HSTS_SECONDS', 31_536_000)}"
    if as_bool(env, "SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True):
        hsts += "; includeSubDomains"
    if as_bool(env, "SECURE_HSTS_PRELOAD", default=True):
        hsts += "; preload"

    worker_stop = as_int(env, "CELERY_WORKER_STOP_TIMEOUT", 330)
    for name in ("CELERY_TASK_TIME_LIMIT", "CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT"):
        limit = as_int(env, name, 0)
        if limit and worker_stop <= limit:
            raise RenderError(
                f"CELERY_WORKER_STOP_TIMEOUT={worker_stop} must be longer than {name}={limit}, "
                "or supervisor kills the worker while tasks are still finishing."
            )

    programs = _words(text("DEPLOY_PROGRAMS")) or ["web", "worker", "beat"]
    unknown = set(programs) - {"web", "worker", "beat"}
    if unknown:
        raise RenderError(
            f"DEPLOY_PROGRAMS names {', '.join(sorted(unknown))}; choose from web, worker, beat."
        )

    nginx_bin = text("NGINX_BIN") or shutil.which("nginx") or "/usr/sbin/nginx"
    nginx_version = installed_nginx_version(nginx_bin)
    running_as_root = hasattr(os, "geteuid") and os.geteuid() == 0

    # Only the variables gunicorn.conf.py reads; nginx's side is rendered from the same values.
    gunicorn_env = {key: value for key, value in env.items() if key.startswith("GUNICORN_")}
    gunicorn_env.update(
        GUNICORN_BIND=gunicorn_bind,
        GUNICORN_TIMEOUT=str(gunicorn_timeout),
        GUNICORN_GRACEFUL_TIMEOUT=str(graceful_timeout),
        GUNICORN_KEEPALIVE=str(gunicorn_keepalive),
    )
    gunicorn_env.setdefault("GUNICORN_CONTROL_SOCKET", str(run_dir / "gunicorn.ctl"))
    gunicorn_env.setdefault("GUNICORN_PIDFILE", str(run_dir / "gunicorn.pid"))
    # gunicorn.conf.py reads the process environment only, not .env: hand it gunicorn's statsd.
    for key in ("STATSD_HOST", "STATSD_PORT", "STATSD_PREFIX", "PROJECT_SLUG"):
        if env.get(key):
            gunicorn_env[key] = env[key]

    concurrency = text("CELERY_WORKER_CONCURRENCY")
    return {
        "TARGET": target,
        "LOCAL": local,
        "SLUG": slug,
        "APP_DIR": app_dir,
        "BUILD_DIR": build_dir,
        "RUN_DIR": run_dir,
        "LOG_DIR": log_dir,
        "VENV_BIN": path("DEPLOY_VENV", app_dir / ".venv") / "bin",
        "STATIC_ROOT": path("STATIC_ROOT", app_dir / "staticfiles"),
        "MEDIA_ROOT": path("MEDIA_ROOT", app_dir / "media"),
        "ADMIN_URL": "/" + text("ADMIN_URL", "admin/").strip("/") + "/",
        # nginx
        "NGINX_BIN": nginx_bin,
        "NGINX_USER": text("NGINX_USER", "root" if local and running_as_root else ""),
        "NGINX_WORKER_PROCESSES": text("NGINX_WORKER_PROCESSES", "auto"),
        "NGINX_MIME_TYPES": text("NGINX_MIME_TYPES", "/etc/nginx/mime.types"),
        "NGINX_LOG_DIR": path("NGINX_LOG_DIR", log_dir if local else Path("/var/log/nginx")),
        "NGINX_SERVER_NAMES": " ".join(
            _words(text("NGINX_SERVER_NAMES"))
            or [host for host in _words(text("ALLOWED_HOSTS")) if host != "*"]
            or ["localhost", "127.0.0.1"]
        ),
        # gunicorn and nginx spell a unix socket the same way ("unix:/path"); a bare port means localhost.
        "UPSTREAM_SERVERS": [
            f"127.0.0.1:{server}" if server.isdigit() else server
            for server in _words(text("NGINX_UPSTREAM_SERVERS")) or [gunicorn_bind]
        ],
        "NGINX_UPSTREAM_MAX_FAILS": text("NGINX_UPSTREAM_MAX_FAILS", "3"),
        "NGINX_UPSTREAM_FAIL_TIMEOUT": text("NGINX_UPSTREAM_FAIL_TIMEOUT", "10"),
        "UPSTREAM_KEEPALIVE_TIMEOUT": gunicorn_keepalive - (1 if gunicorn_keepalive <= 10 else 5),
        "GUNICORN_KEEPALIVE": gunicorn_keepalive,
        "PROXY_TIMEOUT": gunicorn_timeout,
        "NGINX_LISTEN": listen_http,
        "NGINX_TLS": tls,
        "NGINX_LISTEN_TLS": listen_https,
        # nginx 1.25.1 moved HTTP/2 from a `listen` flag to its own directive.
        "HTTP2_DIRECTIVE": nginx_version >= (1, 25, 1),
        # ssl_reject_handshake arrived in nginx 1.19.4 (Debian 11 and Ubuntu 22.04 ship 1.18).
        "REJECT_HANDSHAKE": nginx_version >= (1, 19, 4),
        "HTTPS_PORT_SUFFIX": "" if https_port == "443" else f":{https_port}",
        "HTTP_PORT_SUFFIX": "" if http_port == "80" else f":{http_port}",
        "NGINX_TLS_CERT": text("NGINX_TLS_CERT"),
        "NGINX_TLS_KEY": text("NGINX_TLS_KEY"),
        "NGINX_TLS_DHPARAM": text("NGINX_TLS_DHPARAM"),
        "NGINX_TLS_STAPLING": as_bool(env, "NGINX_TLS_STAPLING", default=False),
        "NGINX_RESOLVER": text("NGINX_RESOLVER", "127.0.0.53"),
        "HSTS": hsts,
        "NGINX_CLIENT_MAX_BODY_SIZE": text("NGINX_CLIENT_MAX_BODY_SIZE", "10m"),
        "NGINX_LIMIT_REQ": as_bool(env, "NGINX_LIMIT_REQ", default=True),
        "NGINX_MICROCACHE": as_bool(env, "NGINX_MICROCACHE", default=True),
        "NGINX_MICROCACHE_TTL": microcache_ttl,
        "NGINX_CACHE_DIR": path(
            "NGINX_CACHE_DIR", run_dir / "nginx" / "cache" if local else Path(f"/var/cache/nginx/{slug}")
        ),
        **rates,
        "NGINX_LIMIT_LOGIN_BURST": as_int(env, "NGINX_LIMIT_LOGIN_BURST", 5),
        "NGINX_LIMIT_API_BURST": as_int(env, "NGINX_LIMIT_API_BURST", 40),
        "NGINX_LIMIT_LOGIN_RETRY_AFTER": _retry_after(rates["NGINX_LIMIT_LOGIN_RATE"]),
        "NGINX_LIMIT_API_RETRY_AFTER": _retry_after(rates["NGINX_LIMIT_API_RATE"]),
        "NGINX_ACME_ROOT": path("NGINX_ACME_ROOT", build_dir / "acme" if local else Path("/var/www/acme")),
        # supervisor
        "PROGRAMS": ",".join(programs),
        "DEPLOY_USER": text("DEPLOY_USER", "" if local else slug),
        "WEB_ENVIRONMENT": ",".join(
            f'{key}="{_supervisor_value(value)}"' for key, value in sorted(gunicorn_env.items())
        ),
        "WEB_STOP_TIMEOUT": graceful_timeout + 10,
        "CELERY_WORKER_CONCURRENCY": int(concurrency) if concurrency else "",
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


_RATE_DEFAULTS = {
    "NGINX_LIMIT_LOGIN_RATE": "10r/m",
    "NGINX_LIMIT_API_RATE": "20r/s",
}


def _retry_after(rate: str) -> int:
    """Whole seconds until a rate of "10r/m" or "20r/s" lets one more request through."""
    count, _, unit = rate.partition("r/")
    return max(1, math.ceil((60 if unit == "m" else 1) / max(1, int(count))))


def _supervisor_value(value: str) -> str:
    # supervisor expands %(name)s in values and reads quotes as delimiters.
    return value.replace("%", "%%").replace('"', '\\"')


# --- rendering ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    template: str  # relative to deploy/
    target: Path


def outputs(context: Mapping[str, object]) -> list[Output]:
    """Which template goes where in the build folder (a tree shaped like /etc/nginx and /etc/supervisor)."""
    build, slug = Path(str(context["BUILD_DIR"])), context["SLUG"]
    result = [
        Output("nginx/nginx.conf.j2", build / "nginx" / "nginx.conf"),
        Output("nginx/site.conf.j2", build / "nginx" / "sites-available" / f"{slug}.conf"),
    ]
    for snippet in sorted((DEPLOY_DIR / "nginx" / "snippets").glob("*.conf.j2")):
        result.append(
            Output(f"nginx/snippets/{snippet.name}", build / "nginx" / "snippets" / str(slug) / snippet.stem)
        )
    result.append(Output("supervisor/supervisord.conf.j2", build / "supervisor" / "supervisord.conf"))
    programs = ["group", *str(context["PROGRAMS"]).split(","), *(["nginx"] if context["LOCAL"] else [])]
    for program in programs:
        result.append(
            Output(
                f"supervisor/{program}.conf.j2", build / "supervisor" / "conf.d" / f"{slug}-{program}.conf"
            )
        )
    return result


def render_template(name: str, context: Mapping[str, object]) -> str:
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


def render(env: Mapping[str, str], project_dir: Path = PROJECT_DIR) -> tuple[dict[str, object], list[Output]]:
    """Write every rendered file; return the context and where each file went."""
    context = build_context(env, project_dir)
    files = outputs(context)
    build = Path(str(context["BUILD_DIR"]))
    # Stale files from an earlier render (say, with TLS on) must not be included by accident.
    for stale in (build / "nginx", build / "supervisor"):
        shutil.rmtree(stale, ignore_errors=True)
    for output in files:
        text = render_template(output.template, context)
        output.target.parent.mkdir(parents=True, exist_ok=True)
        output.target.write_text(text)
    if context["LOCAL"]:
        for directory in ("RUN_DIR", "LOG_DIR", "NGINX_LOG_DIR", "NGINX_ACME_ROOT"):
            Path(str(context[directory])).mkdir(parents=True, exist_ok=True)
        (Path(str(context["RUN_DIR"])) / "nginx").mkdir(exist_ok=True)
    return context, files


# --- validation by the real programs -----------------------------------------------------------


def validate_nginx(context: Mapping[str, object]) -> None:
    conf = Path(str(context["BUILD_DIR"])) / "nginx" / "nginx.conf"
    Path(str(context["RUN_DIR"]), "nginx").mkdir(parents=True, exist_ok=True)
    nginx = str(context["NGINX_BIN"])
    if not Path(nginx).exists():
        raise RenderError(f"nginx not found at {nginx}; install it (apt-get install nginx) or set NGINX_BIN.")
    error_log = Path(str(context["NGINX_LOG_DIR"])) / "nginx-error.log"
    result = subprocess.run(
        [nginx, "-t", "-q", "-e", str(error_log), "-c", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RenderError(f"nginx -t rejected {conf}:\n{result.stderr.strip()}")


def validate_supervisor(context: Mapping[str, object]) -> None:
    conf = Path(str(context["BUILD_DIR"])) / "supervisor" / "supervisord.conf"
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
    missing = set(str(context["PROGRAMS"]).split(",")) - programs
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
    for output in files:
        print(f"  deploy/{output.template}  ->  {output.target}")
    if not args.no_validate:
        print("nginx -t: ok; supervisor: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
