"""The runbook of docs/production.md, walked on this machine as literally as a test can walk it.

A fresh system user (adduser, as step 2), a copy of the repository in its home, the runtime-only
virtualenv (step 3), a role and database of its own on the shared PostgreSQL (step 4), the `.env`
of step 5, the commands of step 6 run with `sudo -u`, the host render of steps 7 and 8, the
programs under supervisord running as that user behind nginx, and the backup timer's command
(step 13). Everything is stopped, and the user, role and database removed, at the end.

What cannot run here, and what stands in for it:
- Step 1's apt-get: the suite's own system packages (`make test` checks them) plus sudo.
- /srv, /run/<slug>, /var/log/<slug>, /var/log/nginx, /var/www/acme, /var/cache/nginx: directories
  under one temporary folder, named in `.env` by the variables step 5 says each has; a test
  writes nothing under /etc, /srv, /run or /var, and binds no port below 1024.
- Ports 80 and 443: free ports on 127.0.0.1 (NGINX_LISTEN, NGINX_LISTEN_TLS).
- systemctl, systemd-tmpfiles, /etc/nginx and /etc/supervisor: the test starts nginx and
  supervisord as root, as their system services do, from the rendered nginx.conf and
  supervisord.conf (standing in for Debian's, which include the same site and programs); a reload
  of nginx is the SIGHUP `systemctl reload nginx` sends.
- certbot and DNS: a self-signed certificate for example.com, and `curl --resolve`.
- `sudo -u <slug> make install-runtime`: the same target, run as root with this machine's warm
  package cache and the host's python3 (as the user it would download every package), copying
  rather than hard-linking from the cache, then handed to the user with chown. The install itself
  is proven by tests/stack/test_runtime_install.py; here the user runs everything from it.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import re
import secrets
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from supervisor.xmlrpc import SupervisorTransport

from config.env import env_value
from tests.support.net import free_port
from tests.support.processes import ROOT, alive, descendants
from tests.support.stack import postgres_base_url, stack_database_url

pytestmark = pytest.mark.integration

SITE = "example.com"
# systemd's PATH for a service without Environment=PATH: what the backup unit's make runs under.
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_PYTHON = "/usr/bin/python3"
# Databases of the shared Redis that no other test uses: the broker's queue and the beat lock are
# this walk's alone.
REDIS_DBS = (13, 14, 15)
READY_TIMEOUT = 120

# The runbook's /srv/<slug>, user and units: the slug its .env leaves at the default.
SLUG = env_value("PROJECT_SLUG", environ={})


def run(command: list[str], *, timeout: float = 300, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)


def ok(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """A runbook command that must succeed; its output is the failure message otherwise."""
    result = run(command, **kwargs)
    assert result.returncode == 0, f"$ {shlex.join(command)}\n{result.stdout}\n{result.stderr}"
    return result


@dataclass
class Host:
    user: str
    top: Path  # the temporary folder that stands in for /
    home: Path
    app: Path
    run_dir: Path
    log_dir: Path
    nginx_log_dir: Path
    http_port: int
    https_port: int
    cert: Path
    admin_email: str
    admin_password: str
    database: str
    database_url: str
    supervisord: subprocess.Popen[str] | None = None
    nginx: subprocess.Popen[str] | None = None

    def sudo(
        self, *command: str, cwd: Path | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return run(["sudo", "-u", self.user, *command], cwd=cwd or self.home, timeout=timeout)

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The runbook's manage alias."""
        return self.sudo(
            "env",
            "DJANGO_SETTINGS_MODULE=config.settings.production",
            f"{self.app}/.venv/bin/python",
            f"{self.app}/manage.py",
            *args,
        )

    def curl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """curl as the runbook uses it, with example.com resolved to this machine."""
        resolve = [
            "--resolve",
            f"{SITE}:{self.http_port}:127.0.0.1",
            "--resolve",
            f"{SITE}:{self.https_port}:127.0.0.1",
        ]
        return run(
            ["curl", "--silent", "--max-time", "10", "--cacert", str(self.cert), *resolve, *args], timeout=30
        )

    def url(self, path: str, *, https: bool = True) -> str:
        return f"https://{SITE}:{self.https_port}{path}" if https else f"http://{SITE}:{self.http_port}{path}"

    def status(self, path: str, *, https: bool = True) -> int:
        result = self.curl(
            "--output", "/dev/null", "--write-out", "%{http_code}", self.url(path, https=https)
        )
        return int(result.stdout or 0)

    def supervisor(self) -> Any:
        transport = SupervisorTransport(None, None, f"unix://{self.run_dir / 'supervisor.sock'}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def program_pids(self) -> dict[str, int]:
        try:
            infos = self.supervisor().getAllProcessInfo()
        except (OSError, xmlrpc.client.Fault):
            return {}
        return {info["name"]: int(info["pid"]) for info in infos if info["statename"] == "RUNNING"}

    def logs(self) -> str:
        parts = []
        for directory in (self.log_dir, self.nginx_log_dir):
            for path in sorted(directory.glob("*.log")):
                tail = path.read_text(errors="replace").splitlines()[-15:]
                parts.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(parts)

    def render(self, **extra: str) -> subprocess.CompletedProcess[str]:
        """Step 7: `.venv/bin/python -m deploy.render` as root in the checkout."""
        # Debian's /etc/nginx/nginx.conf runs the workers as www-data; the rendered nginx.conf that
        # stands in for it says so too.
        environment = {"PATH": SYSTEMD_PATH, "LANG": "C.UTF-8", "NGINX_USER": "www-data", **extra}
        return run([str(self.app / ".venv/bin/python"), "-m", "deploy.render"], cwd=self.app, env=environment)


def _copy_repository(app: Path) -> None:
    """The checkout's files as `git clone` of this working tree would have them (changes included)."""
    listed = ok(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout
    for relative in filter(None, listed.split("\0")):
        source = ROOT / relative
        if source.is_file():
            target = app / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _certificate(directory: Path) -> Path:
    cert, key = directory / "fullchain.pem", directory / "privkey.pem"
    ok(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", f"/CN={SITE}", "-addext", f"subjectAltName=DNS:{SITE},DNS:www.{SITE}"),
            *("-keyout", str(key), "-out", str(cert)),
        ]
    )
    return cert


def _stop(process: subprocess.Popen[str] | None, sig: int) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    if os.geteuid() != 0:
        pytest.skip("the runbook's walk adds a system user and runs commands as it: run make test as root")
    user = f"runbook{secrets.token_hex(3)}"
    # The stand-in for /: reachable by the new user and by nginx's www-data, as / is.
    top = Path(tempfile.mkdtemp(prefix="runbook-"))
    top.chmod(0o755)
    base = postgres_base_url()
    database = f"{base.rsplit('/', 1)[-1] or 'app'}_runbook_{os.getpid()}"
    password = secrets.token_urlsafe(16)
    admin_url = stack_database_url("postgres")
    walk = Host(
        user=user,
        top=top,
        home=top / "srv" / SLUG,
        app=top / "srv" / SLUG / "app",
        run_dir=top / "run" / SLUG,
        log_dir=top / "var" / "log" / SLUG,
        nginx_log_dir=top / "var" / "log" / "nginx",
        http_port=free_port(),
        https_port=free_port(),
        cert=top / "etc" / "letsencrypt" / "live" / SITE / "fullchain.pem",
        admin_email=f"admin@{SITE}",
        admin_password=secrets.token_urlsafe(16),
        database=database,
        database_url=f"postgres://{user}:{password}@127.0.0.1:5432/{database}",
    )
    seen: set[tuple[int, int]] = set()
    try:
        # Step 2: the system user, and the directories the programs write.
        ok(["adduser", "--system", "--group", "--home", str(walk.home), user])
        ok(["usermod", "-aG", user, "www-data"])
        for directory in (walk.home / "static", walk.home / "media"):
            ok(["install", "-d", "-o", user, "-g", user, "-m", "2750", str(directory)])
        for directory in (walk.log_dir, walk.run_dir):  # /var/log/<slug>; /run/<slug> as tmpfiles.d makes it
            ok(["install", "-d", "-o", user, "-g", user, "-m", "750", str(directory)])
        # /var/log/nginx comes with Debian's nginx; the runbook makes /var/www/acme and /var/cache/nginx.
        for directory in (walk.nginx_log_dir, top / "var" / "www" / "acme", top / "var" / "cache" / "nginx"):
            ok(["install", "-d", "-m", "755", str(directory)])

        # Step 3: the code in the user's home, and the runtime-only virtualenv (see the docstring).
        _copy_repository(walk.app)
        uv = shutil.which("uv") or str(ROOT / ".uv" / "bin" / "uv")
        ok(
            ["make", "--no-print-directory", "install-runtime", f"PYTHON={HOST_PYTHON}", f"UV={uv}"],
            cwd=walk.app,
            env={**os.environ, "UV_LINK_MODE": "copy"},
            timeout=600,
        )
        ok(["chown", "-R", f"{user}:{user}", str(walk.app)])

        for db in REDIS_DBS:
            ok(["redis-cli", "-n", str(db), "FLUSHDB"])

        # Step 4: a role and a database of its own (createuser --pwprompt; createdb --owner).
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            connection.execute(f'DROP ROLE IF EXISTS "{user}"')
            connection.execute(f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}'")
            connection.execute(f'CREATE DATABASE "{database}" OWNER "{user}"')

        # Step 5: the environment file, as the runbook writes it; the lines after the marker are
        # this machine's stand-ins for the host's paths and ports.
        walk.cert.parent.mkdir(parents=True)
        _certificate(walk.cert.parent)
        redis = "redis://127.0.0.1:6379"
        env_file = walk.app / ".env"
        env_file.write_text(
            "\n".join(
                [
                    f"SECRET_KEY={secrets.token_urlsafe(64)}",
                    f"ALLOWED_HOSTS={SITE},www.{SITE}",
                    f"CSRF_TRUSTED_ORIGINS=https://{SITE},https://www.{SITE}",
                    f"DATABASE_URL={walk.database_url}",
                    f"REDIS_URL={redis}",
                    "NUM_PROXIES=1",
                    f"SITE_URL=https://{SITE}",
                    # Nothing listens there: no mail leaves during the walk, and none may.
                    f"EMAIL_URL=smtp+tls://mailer:secret@127.0.0.1:{free_port()}",
                    f"DEFAULT_FROM_EMAIL=Example <noreply@{SITE}>",
                    f"STATIC_ROOT={walk.home / 'static'}",
                    f"MEDIA_ROOT={walk.home / 'media'}",
                    "DEPLOY_TARGET=host",
                    f"NGINX_TLS_CERT={walk.cert}",
                    f"NGINX_TLS_KEY={walk.cert.parent / 'privkey.pem'}",
                    "# This machine's stand-ins for the host's paths, ports and user.",
                    f"DEPLOY_USER={user}",
                    f"DEPLOY_RUN_DIR={walk.run_dir}",
                    f"DEPLOY_LOG_DIR={walk.log_dir}",
                    f"NGINX_LOG_DIR={walk.nginx_log_dir}",
                    f"NGINX_ACME_ROOT={top / 'var' / 'www' / 'acme'}",
                    f"NGINX_CACHE_DIR={top / 'var' / 'cache' / 'nginx' / SLUG}",
                    f"NGINX_LISTEN=127.0.0.1:{walk.http_port}",
                    f"NGINX_LISTEN_TLS=127.0.0.1:{walk.https_port}",
                    "NGINX_WORKER_PROCESSES=1",
                    f"CACHE_REDIS_URL={redis}/{REDIS_DBS[0]}",
                    f"CELERY_BROKER_URL={redis}/{REDIS_DBS[1]}",
                    f"AUTOCOMPLETE_REDIS_URL={redis}/{REDIS_DBS[2]}",
                    "GUNICORN_WORKERS=1",
                    "CELERY_WORKER_CONCURRENCY=1",
                    "",
                ]
            )
        )
        ok(["chown", f"{user}:{user}", str(env_file)])
        env_file.chmod(0o600)

        # Step 6: migrate, check, collect static files, compress them, the first admin.
        for args in (
            ("migrate", "--no-input"),
            ("check", "--deploy", "--fail-level", "WARNING"),
            ("collectstatic", "--no-input", "--verbosity", "0"),
        ):
            result = walk.manage(*args)
            assert result.returncode == 0, f"manage.py {' '.join(args)}\n{result.stdout}\n{result.stderr}"
        result = walk.sudo(
            f"{walk.app}/.venv/bin/python",
            "-m",
            "deploy.precompress",
            str(walk.home / "static"),
            cwd=walk.app,
        )
        assert result.returncode == 0, result.stderr
        result = walk.sudo(
            "env",
            "DJANGO_SETTINGS_MODULE=config.settings.production",
            f"DJANGO_SUPERUSER_EMAIL={walk.admin_email}",
            f"DJANGO_SUPERUSER_PASSWORD={walk.admin_password}",
            "make",
            "superuser",
            cwd=walk.app,
        )
        assert result.returncode == 0, result.stdout + result.stderr

        # Step 7: the plain-HTTP render, then nginx and supervisord with the rendered files.
        rendered = walk.render(NGINX_TLS="off")
        assert rendered.returncode == 0, rendered.stdout + rendered.stderr
        build = walk.app / "build" / "deploy"
        walk.nginx = subprocess.Popen(
            ["nginx", "-c", str(build / "nginx" / "nginx.conf"), "-e", str(walk.nginx_log_dir / "error.log")],
            env={"PATH": SYSTEMD_PATH},
            start_new_session=True,
            text=True,
        )
        # Debian's supervisord runs as root, with systemd's environment: nothing of this test's.
        walk.supervisord = subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "supervisord"),
                "-c",
                str(build / "supervisor" / "supervisord.conf"),
            ],
            env={"PATH": SYSTEMD_PATH, "LANG": "C.UTF-8"},
            cwd="/",
            start_new_session=True,
            text=True,
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            seen |= descendants(walk.supervisord.pid) | descendants(walk.nginx.pid)
            if walk.supervisord.poll() is not None or walk.nginx.poll() is not None:
                pytest.fail(f"supervisord or nginx exited\n{walk.logs()}")
            if len(walk.program_pids()) == 3 and walk.status("/healthz", https=False) == 200:
                break
            time.sleep(0.5)
        else:
            answer = walk.curl("--include", walk.url("/healthz", https=False))
            pytest.fail(f"no /healthz through nginx in {READY_TIMEOUT} s: {answer.stdout}\n{walk.logs()}")

        # Step 8: the TLS render (the certificate exists now), and nginx reloaded.
        rendered = walk.render()
        assert rendered.returncode == 0, rendered.stdout + rendered.stderr
        walk.nginx.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + READY_TIMEOUT
        while walk.status("/healthz") != 200:
            assert time.monotonic() < deadline, f"no HTTPS after the reload\n{walk.logs()}"
            time.sleep(0.5)
        seen |= descendants(walk.supervisord.pid) | descendants(walk.nginx.pid)
        yield walk
    finally:
        if walk.supervisord is not None:
            seen |= descendants(walk.supervisord.pid)
        if walk.nginx is not None:
            seen |= descendants(walk.nginx.pid)
        _stop(walk.supervisord, signal.SIGTERM)
        _stop(walk.nginx, signal.SIGQUIT)
        for pid, _ in alive(seen):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            connection.execute(f'DROP ROLE IF EXISTS "{user}"')
        for db in REDIS_DBS:
            run(["redis-cli", "-n", str(db), "FLUSHDB"])
        run(["gpasswd", "-d", "www-data", user])
        run(["userdel", user])
        run(["groupdel", user])
        shutil.rmtree(top, ignore_errors=True)


def test_the_programs_run_as_the_sites_user(host):
    pids = host.program_pids()
    assert set(pids) == {"web", "worker", "beat"}
    uid = int(run(["id", "-u", host.user]).stdout)
    for name, pid in pids.items():
        real_uid = int(re.search(r"^Uid:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M).group(1))
        assert real_uid == uid, name


def test_step_5s_environment_sends_mail_over_smtp_with_links_to_the_site(host):
    shown = host.manage(
        *("shell", "--no-imports", "-c"),
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.EMAIL_BACKEND, s.SITE_URL, s.DEFAULT_FROM_EMAIL)",
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split(" ", 3) == [
        "False",
        "django.core.mail.backends.smtp.EmailBackend",
        f"https://{SITE}",
        f"Example <noreply@{SITE}>\n",
    ]


def test_plain_http_redirects_to_https_and_the_probes_answer_through_nginx(host):
    redirect = host.curl("--head", host.url("/", https=False))
    assert redirect.stdout.startswith("HTTP/1.1 301"), redirect.stdout
    assert f"location: https://{SITE}" in redirect.stdout.lower()
    assert host.status("/healthz") == 200
    # Step 7: a name the site does not serve gets no answer at all (nginx's 444).
    stranger = run(
        ["curl", "--silent", "-H", "Host: stranger.test", f"http://127.0.0.1:{host.http_port}/healthz"]
    )
    assert stranger.returncode == 52, stranger  # curl: "Empty reply from server"
    # Ready once the worker has answered and beat has beaten: wait for that, not for a time.
    deadline = time.monotonic() + READY_TIMEOUT
    while (ready := host.curl("--write-out", "\n%{http_code}", host.url("/readyz"))).stdout.endswith("\n503"):
        assert time.monotonic() < deadline, ready.stdout
        time.sleep(1)
    assert ready.stdout.endswith("\n200"), ready.stdout


def test_the_first_admin_signs_in_on_the_admin_login_page(host):
    jar = host.top / "cookies.txt"
    page = host.curl("--cookie-jar", str(jar), host.url("/admin/login/"))
    assert 'name="csrfmiddlewaretoken"' in page.stdout, page.stdout[:500]
    # nginx's www-data reads the collected files through the site's group (step 2).
    stylesheet = re.search(r'href="(/static/[^"]+\.css)"', page.stdout).group(1)
    assert host.status(stylesheet) == 200, stylesheet
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.stdout).group(1)
    signed_in = host.curl(
        *("--cookie", str(jar), "--cookie-jar", str(jar)),
        *("--referer", host.url("/admin/login/"), "--write-out", "%{http_code} %{redirect_url}"),
        *("--output", "/dev/null"),
        *(
            "--data-urlencode",
            f"csrfmiddlewaretoken={token}",
            "--data-urlencode",
            f"username={host.admin_email}",
        ),
        *("--data-urlencode", f"password={host.admin_password}", "--data-urlencode", "next=/admin/"),
        host.url("/admin/login/"),
    )
    assert signed_in.stdout == f"302 {host.url('/admin/')}", signed_in.stdout
    admin = host.curl(
        "--cookie", str(jar), "--write-out", "%{http_code}", "--output", "/dev/null", host.url("/admin/")
    )
    assert admin.stdout == "200"


@pytest.fixture(scope="module")
def backup(host: Host) -> Path:
    """Step 13: the backup timer's command, read from its unit and run as its User= would run it."""
    unit = configparser.RawConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "deploy" / "systemd" / "app-backup@.service")
    # A template unit: its instance (%i) is the project's slug.
    service = {key: value.replace("%i", SLUG) for key, value in unit["Service"].items()}
    assert (service["User"], service["WorkingDirectory"]) == (SLUG, f"/srv/{SLUG}/app")
    environment = shlex.split(service["Environment"])
    assert "DJANGO_SETTINGS_MODULE=config.settings.production" in environment
    command = shlex.split(service["ExecStart"])
    result = host.sudo("env", f"PATH={SYSTEMD_PATH}", *environment, *command, cwd=host.app)
    assert result.returncode == 0, result.stdout + result.stderr
    dumps = sorted((host.app / "backups").glob("*.dump"))
    assert len(dumps) == 1, result.stdout
    return dumps[0]


def test_the_backup_timers_command_writes_a_dump_only_its_user_can_read(host, backup):
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert stat.S_IMODE(backup.parent.stat().st_mode) == 0o700
    assert backup.stat().st_uid == int(run(["id", "-u", host.user]).stdout)
    assert ok(["pg_restore", "--list", str(backup)]).stdout.count("TABLE DATA public ") > 10
    # The timer's make ran from the runtime-only virtualenv as it was: no dev group synced into it.
    assert not (host.app / ".venv" / "bin" / "pytest").exists()


def test_the_rehearsed_restore_brings_the_first_admin_back_into_an_empty_database(host, backup):
    rehearsal = f"{host.database}_rehearsal"
    rehearsal_url = re.sub(r"/[^/]+$", f"/{rehearsal}", host.database_url)
    admin_url = stack_database_url("postgres")
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{rehearsal}" OWNER "{host.user}"')
    try:
        restored = host.sudo(
            *("env", "DJANGO_SETTINGS_MODULE=config.settings.production", f"DATABASE_URL={rehearsal_url}"),
            *("make", "restore", f"FILE=backups/{backup.name}"),
            cwd=host.app,
        )
        assert restored.returncode == 0, restored.stdout + restored.stderr
        with psycopg.connect(stack_database_url(rehearsal)) as connection:
            emails = [row[0] for row in connection.execute("SELECT email FROM users_user WHERE is_superuser")]
        assert emails == [host.admin_email]
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{rehearsal}" WITH (FORCE)')
