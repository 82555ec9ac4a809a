"""The deploy configs: rendered from the environment, checked by nginx and supervisor themselves."""

from __future__ import annotations

import ast
import configparser
import gzip
import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest

from apps.core.data.db_router import RECENT_WRITE_COOKIE
from apps.core.observability import request_id
from config import env
from deploy import precompress, render

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = ROOT / "deploy"


def run_render(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "PYTHONDONTWRITEBYTECODE": "1",
        "DEPLOY_BUILD_DIR": str(tmp_path / "build"),
        # The name every rendered file and group derives from, whatever a fork calls itself.
        "PROJECT_SLUG": "site",
    }
    return subprocess.run(
        [sys.executable, "-m", "deploy.render", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def supervisor_programs(build: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";",))
    parser.read(sorted((build / "supervisor" / "conf.d").glob("*.conf")))
    return parser


def test_render_writes_every_file_into_the_build_folder_and_both_programs_accept_them(tmp_path):
    result = run_render(tmp_path)

    assert result.returncode == 0, result.stderr
    assert "nginx -t: ok; supervisor: ok" in result.stdout
    build = tmp_path / "build"
    for relative in (
        "nginx/nginx.conf",
        "nginx/sites-available/site.conf",
        "nginx/snippets/site/proxy.conf",
        "supervisor/supervisord.conf",
        "supervisor/conf.d/site-web.conf",
    ):
        assert (build / relative).is_file(), relative
        assert str(build / relative) in result.stdout


def test_render_reports_a_value_nginx_rejects_and_fails(tmp_path):
    result = run_render(tmp_path, NGINX_CLIENT_MAX_BODY_SIZE="lots")

    assert result.returncode == 2
    assert "nginx -t rejected" in result.stderr
    assert "client_max_body_size" in result.stderr


def test_render_refuses_https_without_a_certificate(tmp_path):
    result = run_render(tmp_path, NGINX_TLS="on")

    assert result.returncode == 2
    assert "NGINX_TLS_CERT" in result.stderr


def test_render_refuses_a_worker_stop_timeout_shorter_than_the_task_time_limit(tmp_path):
    result = run_render(tmp_path, CELERY_TASK_TIME_LIMIT="600", CELERY_WORKER_STOP_TIMEOUT="300")

    assert result.returncode == 2
    assert "CELERY_WORKER_STOP_TIMEOUT" in result.stderr


def test_rate_limits_can_be_switched_off_by_the_environment(tmp_path):
    assert run_render(tmp_path, NGINX_LIMIT_REQ="off").returncode == 0

    nginx = "".join(path.read_text() for path in (tmp_path / "build" / "nginx").rglob("*.conf"))
    assert "limit_req" not in nginx


def test_the_api_micro_cache_can_be_switched_off_by_the_environment(tmp_path):
    assert run_render(tmp_path, NGINX_MICROCACHE="off").returncode == 0

    nginx = "".join(path.read_text() for path in (tmp_path / "build" / "nginx").rglob("*.conf"))
    assert "proxy_cache" not in nginx


def test_render_refuses_a_micro_cache_ttl_that_is_not_an_nginx_time(tmp_path):
    result = run_render(tmp_path, NGINX_MICROCACHE_TTL="a second")

    assert result.returncode == 2
    assert "NGINX_MICROCACHE_TTL" in result.stderr


def test_nginx_waits_for_gunicorn_as_long_as_gunicorn_lets_a_request_run(tmp_path):
    assert run_render(tmp_path, GUNICORN_TIMEOUT="45", GUNICORN_KEEPALIVE="20").returncode == 0

    build = tmp_path / "build"
    proxy = (build / "nginx" / "snippets" / "site" / "proxy.conf").read_text()
    site = (build / "nginx" / "sites-available" / "site.conf").read_text()
    assert "proxy_read_timeout 45s;" in proxy
    # nginx lets idle upstream connections go before gunicorn closes them.
    assert "keepalive_timeout 15s;" in site
    web = supervisor_programs(build)["program:web"]
    assert 'GUNICORN_TIMEOUT="45"' in web["environment"]


def test_supervisor_stop_settings_protect_requests_and_tasks(tmp_path):
    assert run_render(tmp_path, GUNICORN_GRACEFUL_TIMEOUT="25").returncode == 0

    programs = supervisor_programs(tmp_path / "build")
    web, worker, beat = programs["program:web"], programs["program:worker"], programs["program:beat"]
    assert int(web["stopwaitsecs"]) > 25
    assert (web["stopsignal"], web["stopasgroup"], web["killasgroup"]) == ("TERM", "true", "true")
    # The prefork pool must never get the group kill: it would cut running tasks.
    assert (worker["stopsignal"], worker["stopasgroup"], worker["killasgroup"]) == ("TERM", "false", "false")
    assert beat["numprocs"] == "1"
    assert programs["group:site"]["programs"] == "web,worker,beat"
    for program in (web, worker, beat):
        assert program["autorestart"] == "true"
        assert program["stdout_logfile_backups"] != "0"


def test_the_host_target_uses_system_paths_and_a_dedicated_user(tmp_path):
    cert = tmp_path / "cert.pem"
    # Validating needs the host's directories and certificate (see the runbook); rendering does not.
    result = run_render(
        tmp_path,
        "--no-validate",
        DEPLOY_TARGET="host",
        NGINX_TLS_CERT=str(cert),
        NGINX_TLS_KEY=str(cert),
        ALLOWED_HOSTS="example.com,www.example.com",
    )
    assert result.returncode == 0, result.stderr

    build = tmp_path / "build"
    site = (build / "nginx" / "sites-available" / "site.conf").read_text()
    assert "server unix:/run/site/gunicorn.sock max_fails=3 fail_timeout=10s;" in site
    assert "listen 443 ssl http2;" in site
    assert "server_name example.com www.example.com;" in site
    assert "return 301 https://$host$request_uri;" in site
    assert supervisor_programs(build)["program:web"]["user"] == "site"
    assert not (build / "supervisor" / "conf.d" / "site-nginx.conf").exists()


def test_the_committed_templates_name_no_absolute_path():
    absolute = re.compile(r"(?<![\w.}:/])/(?:etc|var|run|srv|home|usr|tmp|opt|root|work)/")
    for template in DEPLOY.rglob("*.j2"):
        for number, line in enumerate(template.read_text().splitlines(), start=1):
            if line.lstrip().startswith(("#", ";")):
                continue  # comments may point an operator at /etc/nginx
            assert not absolute.search(line), f"{template.relative_to(ROOT)}:{number}: {line}"


def test_template_block_tags_leave_no_line_of_their_own():
    template = (
        "a\n{% if ON %}\n    b {{ NAME }}\n{% else %}\nc\n{% endif %}\n  {% if not ON %}\nd\n  {% endif %}\n"
    )

    assert render.TEMPLATES.from_string(template).render(ON=True, NAME="x") == "a\n    b x\n"
    assert render.TEMPLATES.from_string(template).render(ON=False, NAME="x") == "a\nc\nd\n"


def test_a_template_naming_an_unknown_value_is_an_error_that_names_the_file_and_line(tmp_path, monkeypatch):
    (tmp_path / "nginx").mkdir()
    (tmp_path / "nginx" / "broken.conf.j2").write_text("a\nx {{ MISSING }}\n")
    monkeypatch.setattr(render.TEMPLATES, "loader", jinja2.FileSystemLoader(tmp_path))

    with pytest.raises(render.RenderError, match=r"nginx/broken\.conf\.j2:2: 'MISSING' is undefined"):
        render.render_template("nginx/broken.conf.j2", {})


def test_the_renderer_reads_exactly_the_variables_the_reference_says_it_reads():
    declared = env.variables()
    tree = ast.parse((DEPLOY / "render.py").read_text())
    named = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in declared
    }

    assert named == {var.name for var in declared.values() if env.RENDER in var.read_by}


# --- gunicorn --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gunicorn_conf():
    return runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_workers_follow_the_cgroup_v2_cpu_quota_not_the_host_cores(gunicorn_conf, tmp_path):
    write(tmp_path / "cpu.max", "150000 100000\n")

    assert gunicorn_conf["usable_cpus"](tmp_path, affinity=set(range(64))) == 2


def test_workers_follow_the_cgroup_v1_cfs_quota(gunicorn_conf, tmp_path):
    write(tmp_path / "cpu" / "cpu.cfs_quota_us", "300000\n")
    write(tmp_path / "cpu" / "cpu.cfs_period_us", "100000\n")

    assert gunicorn_conf["usable_cpus"](tmp_path, affinity=set(range(16))) == 3


def test_workers_follow_the_cpu_affinity_when_there_is_no_quota(gunicorn_conf, tmp_path):
    write(tmp_path / "cpu.max", "max 100000\n")
    write(tmp_path / "cpu" / "cpu.cfs_quota_us", "-1\n")
    write(tmp_path / "cpu" / "cpu.cfs_period_us", "100000\n")

    assert gunicorn_conf["usable_cpus"](tmp_path, affinity={0, 1, 2}) == 3


def test_a_quota_larger_than_the_affinity_does_not_add_cpus(gunicorn_conf, tmp_path):
    write(tmp_path / "cpu.max", "800000 100000\n")

    assert gunicorn_conf["usable_cpus"](tmp_path, affinity={0, 1}) == 2


def test_a_tiny_quota_still_gets_one_cpu(gunicorn_conf, tmp_path):
    write(tmp_path / "cpu.max", "10000 100000\n")

    assert gunicorn_conf["usable_cpus"](tmp_path, affinity={0, 1}) == 1
    assert gunicorn_conf["default_workers"](1) == 3


def test_gunicorn_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("GUNICORN_WORKERS", "7")
    monkeypatch.setenv("GUNICORN_BIND", "127.0.0.1:9000")

    conf = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))

    assert conf["workers"] == 7
    assert conf["bind"] == ["127.0.0.1:9000"]
    assert conf["worker_class"] == "gthread"
    assert conf["worker_tmp_dir"] == "/dev/shm"  # noqa: S108
    assert conf["preload_app"] is False
    assert conf["max_requests_jitter"] > 0


def test_the_gunicorn_config_is_accepted_by_gunicorn():
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "-c",
            "deploy/gunicorn.conf.py",
            "--check-config",
            "config.wsgi",
        ],
        cwd=ROOT,
        env={
            "PATH": os.environ["PATH"],
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "GUNICORN_BIND": "127.0.0.1:0",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


# --- precompressed static files ----------------------------------------------------------------


def test_precompress_writes_a_gzip_twin_of_text_files_only(tmp_path):
    css = tmp_path / "app.css"
    css.write_text("body { color: black; }\n" * 50)
    (tmp_path / "logo.png").write_bytes(b"\x89PNG" + b"\x00" * 1000)

    assert precompress.precompress(tmp_path) == 1

    assert gzip.decompress((tmp_path / "app.css.gz").read_bytes()) == css.read_bytes()
    assert not (tmp_path / "logo.png.gz").exists()
    assert precompress.precompress(tmp_path) == 0


def test_hosts_other_than_the_beat_host_render_without_beat(tmp_path):
    assert run_render(tmp_path, DEPLOY_PROGRAMS="web,worker").returncode == 0

    programs = supervisor_programs(tmp_path / "build")
    assert programs["group:site"]["programs"] == "web,worker"
    assert not programs.has_section("program:beat")


def fake_nginx(tmp_path: Path, version: str) -> Path:
    """An `nginx -v` that reports another version (rendering only asks for the version)."""
    script = tmp_path / f"nginx-{version}"
    script.write_text(f'#!/bin/sh\necho "nginx version: nginx/{version}" >&2\n')
    script.chmod(0o755)
    return script


def render_tls_site_for(tmp_path: Path, version: str) -> str:
    """The TLS site rendered for an nginx that reports `version` (not validated: it is a stand-in)."""
    result = run_render(
        tmp_path,
        "--no-validate",
        NGINX_BIN=str(fake_nginx(tmp_path, version)),
        NGINX_TLS="on",
        NGINX_TLS_CERT="cert.pem",
        NGINX_TLS_KEY="key.pem",
    )
    assert result.returncode == 0, result.stderr
    return (tmp_path / "build" / "nginx" / "sites-available" / "site.conf").read_text()


@pytest.mark.parametrize(
    ("version", "expected", "absent"),
    [
        ("1.18.0", "listen 127.0.0.1:8443 ssl http2 default_server;", "ssl_reject_handshake"),
        ("1.22.1", "ssl_reject_handshake on;", "http2 on;"),
        ("1.26.2", "http2 on;", "ssl http2"),
    ],
)
def test_the_site_uses_only_directives_the_installed_nginx_knows(tmp_path, version, expected, absent):
    site = render_tls_site_for(tmp_path, version)
    assert expected in site
    assert absent not in site


@pytest.mark.parametrize("version", ["1.18.0", "1.22.1"])
def test_the_default_tls_server_answers_every_request_421_with_or_without_handshake_rejection(
    tmp_path, version
):
    site = render_tls_site_for(tmp_path, version)
    servers = [block.split("\n}")[0] for block in site.split("\nserver {")[1:]]
    catch_all = [server for server in servers if "server_name _;" in server]
    default_tls_server = next(server for server in catch_all if " ssl" in server)
    assert "\n    return 421;" in default_tls_server
    assert "location" not in default_tls_server


def _site_files(tmp_path: Path) -> dict[str, str]:
    nginx = tmp_path / "build" / "nginx"
    return {path.name: path.read_text() for path in nginx.rglob("*.conf")}


@pytest.mark.parametrize(
    ("env", "https_host", "http_host"),
    [
        ({"NGINX_LISTEN": "127.0.0.1:8080"}, "$host", "$host:8080"),
        ({"NGINX_LISTEN": "80", "NGINX_LISTEN_TLS": "443"}, "$host", "$host"),
    ],
)
def test_django_and_the_micro_cache_see_the_site_port_never_the_clients(tmp_path, env, https_host, http_host):
    assert run_render(tmp_path, **env).returncode == 0

    files = _site_files(tmp_path)
    site, proxy, app = files["site.conf"], files["proxy.conf"], files["app.conf"]
    assert f'https   "{https_host}";' in site
    assert f'default "{http_host}";' in site
    assert "proxy_set_header Host $site_canonical_host;" in proxy
    assert "proxy_set_header X-Forwarded-Host $site_canonical_host;" in proxy
    assert 'proxy_set_header X-Forwarded-Port "";' in proxy
    assert "$http_host" not in "".join(files.values())
    assert 'proxy_cache_key "$scheme://$site_canonical_host$request_uri $site_accepts_html";' in app


def test_the_micro_cache_steps_aside_for_exactly_the_session_csrf_and_recent_write_cookies(tmp_path):
    assert run_render(tmp_path).returncode == 0

    files = _site_files(tmp_path)
    site, app = files["site.conf"], files["app.conf"]
    cookie_map = re.search(r"map \$http_cookie \$site_has_session \{\n(.*?)\n\}", site, re.DOTALL)
    assert cookie_map, "no map from the Cookie header in the site file"
    patterns = [re.compile(p) for p in re.findall(r'^\s*"~(.+)"\s+1;$', cookie_map.group(1), re.MULTILINE)]

    def bypasses(cookie_header: str) -> bool:
        return any(pattern.search(cookie_header) for pattern in patterns)

    # Production's names (config/settings/production.py), development's (Django's defaults).
    names = ["__Host-sessionid", "__Host-csrftoken", "sessionid", "csrftoken", RECENT_WRITE_COOKIE]
    for name in names:
        assert bypasses(f"{name}=x"), name
        assert bypasses(f"_ga=GA1.1.1.1; {name}=x"), name
    for analytics in ["_ga=GA1.1.1.1", "_gid=1; _fbp=fb.1.2", "mysessionid_hint=1", "theme=dark"]:
        assert not bypasses(analytics), analytics
    assert "proxy_cache_bypass $site_has_session $http_authorization $site_accepts_indent;" in app
    assert "proxy_no_cache     $site_has_session $http_authorization $site_accepts_indent;" in app
    # A response that sets a cookie is never stored: Set-Cookie must stay out of the ignored headers.
    assert re.findall(r"proxy_ignore_headers (.*);", app) == ["Vary"]


def test_nginx_accepts_exactly_the_request_ids_django_accepts(tmp_path):
    assert run_render(tmp_path).returncode == 0

    site = _site_files(tmp_path)["site.conf"]
    pattern = re.search(r'\$site_request_id \{\n\s+"~(.+)" \$http_x_request_id;', site)
    assert pattern, "the request id map has no pattern"
    nginx_accepts = re.compile(pattern.group(1))
    candidates = ["trace-me", "a:b.c_d-e", "a" * 128, "a" * 129, 'x","y', "a b", "a/b", "caf\u00e9", "a\\b"]
    for candidate in candidates:
        django_accepts = request_id.request_id_from_header(candidate) == candidate
        assert bool(nginx_accepts.match(candidate)) == django_accepts, candidate


def test_nginx_answers_its_own_errors_in_the_api_error_shape_and_says_when_to_retry(tmp_path):
    assert run_render(tmp_path, NGINX_LIMIT_LOGIN_RATE="6r/m", NGINX_LIMIT_API_RATE="20r/s").returncode == 0

    files = _site_files(tmp_path)
    common, site = files["common.conf"], files["site.conf"]
    for line in [
        "error_page 400 494 501 505 =400 /.site-error-400;",
        "error_page 405 @site_405;",
        "error_page 413 @site_413;",
        "error_page 414 =414 /.site-error-414;",
        "error_page 429 $site_error_429;",
        "error_page 502 503 504 =503 $site_error_503;",
    ]:
        assert line in common
    for status in (400, 405, 413, 414, 429, 503):
        body = re.search(rf"return {status} '(.+)\\n';", common)
        assert body, status
        shape = json.loads(body.group(1).replace("$site_request_id", "an-id"))
        assert set(shape) == {"error", "request_id"}
        assert set(shape["error"]) == {"code", "message"}
    # Over HTTP/2 the URL limit is nginx's own check before proxying, not the request line buffer.
    assert "if ($site_uri_too_long) {\n    return 414;\n}" in files["proxy.conf"]
    assert '"~^.{8000}" 1;' in site
    assert "add_header Retry-After $site_retry_after always;" in common
    assert "add_header Retry-After 5 always;" in common
    # 6r/m frees a request every 10 s; 20r/s, in under one.
    assert re.search(r"~\^/api/v1/auth/\s+10;", site)
    assert re.search(r'"~\^/admin/login/\(\\\?\|\$\)"\s+10;', site)
    assert re.search(r"default\s+1;", site)


def test_static_files_and_media_carry_a_strict_content_security_policy(tmp_path):
    assert run_render(tmp_path).returncode == 0

    files = _site_files(tmp_path)
    app = files["app.conf"]
    for location in ("location /static/ {", "location /media/ {"):
        block = app[app.index(location) : app.index("}", app.index(location))]
        assert "include snippets/site/file-csp.conf;" in block
    assert (
        "add_header Content-Security-Policy \"default-src 'none'; style-src 'unsafe-inline'; "
        "frame-ancestors 'none'\" always;"
    ) in files["file-csp.conf"]


def test_nginx_hides_its_version_from_every_server_and_may_open_enough_files(tmp_path):
    assert run_render(tmp_path).returncode == 0

    files = _site_files(tmp_path)
    site = files["site.conf"]
    # At http level, before the first server (the catch-alls included).
    assert site.index("\nserver_tokens off;") < site.index("\nserver {")
    assert "server_tokens" not in files["common.conf"]
    nginx = files["nginx.conf"]
    connections = int(re.search(r"worker_connections (\d+);", nginx).group(1))
    open_files = int(re.search(r"worker_rlimit_nofile (\d+);", nginx).group(1))
    assert open_files >= 2 * connections


def test_the_csrf_token_signing_out_and_the_schema_take_the_api_rate_and_no_cache(tmp_path):
    """Fetching a CSRF token tries no password, so it must not spend a browser's few login attempts;
    the schema answers YAML or JSON by Accept, which the micro-cache's key does not tell apart."""
    assert run_render(tmp_path).returncode == 0
    app = _site_files(tmp_path)["app.conf"]
    for opening in ("location ~ ^/api/v1/auth/(csrf|logout)/$ {", "location = /api/schema/ {"):
        block = app.split(opening, 1)[1].split("}", 1)[0]
        assert "zone=site_api" in block, opening
        assert "proxy_cache" not in block, opening
