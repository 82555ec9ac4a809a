# The one entry point for humans and CI. `make` alone lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
# The port of `make run`: the environment's PORT, else PORT= in .env, else 8000.
ENV_FILE_PORT := $(shell sed -nE 's/^[[:space:]]*(export[[:space:]]+)?PORT=([0-9]+).*/\2/p' .env 2>/dev/null | tail -n 1)
PORT ?= $(or $(ENV_FILE_PORT),8000)
VENV := .venv
BIN := $(VENV)/bin
# uv from PATH if the machine has it, else a private copy installed on first use.
UV := $(or $(shell command -v uv 2>/dev/null),.uv/bin/uv)
MANAGE := $(BIN)/python manage.py
export DJANGO_SETTINGS_MODULE ?= config.settings.development

# A production environment that passes `check --deploy`: the least the runbook's .env must set.
DEPLOY_CHECK_ENV := DJANGO_SETTINGS_MODULE=config.settings.production DEBUG=false \
	SECRET_KEY=lint-check-only-$$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n') \
	ALLOWED_HOSTS=example.com

.PHONY: help
help: ## List the targets
	@echo "make <target>"
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-15s %s\n", $$1, $$2}'

.uv/bin/uv:
	@echo "uv not found; installing it into .uv/"
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "This project needs Python 3.11 or newer; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet uv

# Bytecode compiled at install: a process that may not write into .venv, or runs with
# PYTHONDONTWRITEBYTECODE set, would otherwise compile Django and every library from source each
# time it starts, and a restarted gunicorn or Celery worker would take seconds longer to serve.
$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	@rm -f $(VENV)/.runtime-only
	@touch $@

.PHONY: install
install: $(VENV)/.synced ## Create .venv and install the locked dependencies

# A host needs only what the site runs: no test, lint or type-checking packages (the dev group).
# RUNTIME_VENV=/srv/app/.venv puts it elsewhere; the deploy renderer's DEPLOY_VENV names it.
RUNTIME_VENV ?= $(VENV)
.PHONY: install-runtime
install-runtime: | $(UV) ## Install only the runtime dependencies (no dev group) into RUNTIME_VENV (.venv), as a host should
	UV_PROJECT_ENVIRONMENT=$(RUNTIME_VENV) $(UV) sync --frozen --no-dev --compile-bytecode --python $(PYTHON)
	@# The dev group is gone from it: `make install` must sync again before the tests or lint run.
	@rm -f $(RUNTIME_VENV)/.synced $(RUNTIME_VENV)/.synced-mysql
	@touch $(RUNTIME_VENV)/.runtime-only

# The targets a host's operator runs (migrate, superuser, backup, restore, render, up...) use a
# runtime-only .venv as it is: syncing it would install the dev group on the host, and the nightly
# backup would need the package index. Anywhere else they install (or update) .venv first.
VENV_READY := $(if $(wildcard $(VENV)/.runtime-only),,install)

.PHONY: migrate
migrate: $(VENV_READY) ## Apply database migrations
	$(MANAGE) migrate --no-input

# A broker is configured when CELERY_BROKER_URL or REDIS_URL is set, in the environment or in .env.
BROKER_CONFIGURED := $(shell [ -n "$$CELERY_BROKER_URL$$REDIS_URL" ] \
	|| grep -qsE '^[[:space:]]*(export[[:space:]]+)?(CELERY_BROKER_URL|REDIS_URL)=[^[:space:]]' .env \
	&& echo yes)
CELERY := $(BIN)/celery -A config
CELERY_LOGLEVEL ?= INFO

.PHONY: run
run: migrate ## Run the development server on 127.0.0.1:$PORT, plus a worker and beat when a broker is configured
	@echo "Starting at http://127.0.0.1:$(PORT)/  (API docs: http://127.0.0.1:$(PORT)/api/docs/)"
ifeq ($(BROKER_CONFIGURED),yes)
	@echo "A broker is configured: a Celery worker and beat run beside the server. Ctrl-C stops all three."
	@trap 'kill $$worker $$beat 2>/dev/null; wait' EXIT; \
	$(CELERY) worker --loglevel=$(CELERY_LOGLEVEL) & worker=$$!; \
	$(CELERY) beat --loglevel=$(CELERY_LOGLEVEL) & beat=$$!; \
	PORT=$(PORT) $(MANAGE) runserver 127.0.0.1:$(PORT)
else
	@echo "No broker configured (CELERY_BROKER_URL, REDIS_URL): tasks run eagerly inside the server."
	PORT=$(PORT) $(MANAGE) runserver 127.0.0.1:$(PORT)
endif

.PHONY: need-broker
need-broker:
	@[ "$(BROKER_CONFIGURED)" = yes ] || { echo "error: no broker configured; set CELERY_BROKER_URL or REDIS_URL in the environment or .env (without one, tasks run eagerly in the web process)" >&2; exit 2; }

.PHONY: worker
worker: need-broker migrate ## Run a Celery worker (needs CELERY_BROKER_URL or REDIS_URL)
	$(CELERY) worker --loglevel=$(CELERY_LOGLEVEL)

.PHONY: beat
beat: need-broker migrate ## Run Celery beat: the schedule in code, synced into the database on start
	$(CELERY) beat --loglevel=$(CELERY_LOGLEVEL)

# The database `make test` runs on: postgres (default), sqlite or mariadb. An exported
# DATABASE_URL names the server; DB then only checks that it is of the kind asked for.
# The test profile is forced: the development default exported above would win over pytest.ini.
DB ?= postgres
TEST_DATABASE_URL_postgres := postgres://postgres@127.0.0.1:5432/app
TEST_DATABASE_URL_mariadb := mysql://root@127.0.0.1:3306/app
TEST_DATABASE_URL_sqlite := sqlite:///$(CURDIR)/build/test-app.sqlite3
TEST_DATABASE_SCHEME_postgres := postgres
TEST_DATABASE_SCHEME_mariadb := mysql
TEST_DATABASE_SCHEME_sqlite := sqlite
# Debian packages mysqlclient is built with (it ships no Linux wheel).
MYSQL_BUILD_PACKAGES := pkg-config libmariadb-dev build-essential

# mysqlclient is built from source, so only a MariaDB run installs it (and its build packages).
$(VENV)/.synced-mysql: $(VENV)/.synced
	@if command -v cc >/dev/null && { pkg-config --exists mariadb || pkg-config --exists mysqlclient; } 2>/dev/null; \
	then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing the MariaDB client build packages: $(MYSQL_BUILD_PACKAGES)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(MYSQL_BUILD_PACKAGES) \
	    || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(MYSQL_BUILD_PACKAGES); }; \
	else \
	  echo "mysqlclient needs a C compiler and the MariaDB client headers:" \
	       "sudo apt-get install $(MYSQL_BUILD_PACKAGES)" >&2; \
	  exit 2; \
	fi
	$(UV) sync --frozen --compile-bytecode --group mysql --python $(PYTHON)
	@touch $@

.PHONY: test
test: install system-deps $(if $(filter mariadb,$(DB)),$(VENV)/.synced-mysql) ## Run the suite on DB=postgres (default), sqlite or mariadb, with the real Redis
	@case "$(DB)" in postgres|sqlite|mariadb) ;; \
	  *) echo "DB must be postgres, sqlite or mariadb (got '$(DB)')" >&2; exit 2 ;; esac
	@url="$${DATABASE_URL:-$(TEST_DATABASE_URL_$(DB))}"; \
	case "$$url" in $(TEST_DATABASE_SCHEME_$(DB))*) ;; \
	  *) echo "DATABASE_URL ($${url%%://*}://...) is not a $(DB) URL; unset it or pick the matching DB=" >&2; \
	     exit 2 ;; esac; \
	mkdir -p build; \
	echo "make test: $(DB) at $${url##*@}"; \
	DJANGO_SETTINGS_MODULE=config.settings.test DATABASE_URL="$$url" $(BIN)/pytest $(PYTEST_ARGS)

.PHONY: test-faults
test-faults: ## The fault tests alone (Redis, PostgreSQL, broker broken; processes killed), with their report
	@$(MAKE) --no-print-directory test PYTEST_ARGS='-m faults $(PYTEST_ARGS)'

.PHONY: test-fast
test-fast: install ## The suite without the tests that start real processes (worker, nginx, copies of the repo)
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

# The next versions, before a fork moves to them: the fast suite on the newest Python here
# (NEXT_PYTHON, else the newest python3.X on PATH or under pyenv) with the newest Django that the
# other locked dependencies allow, in a virtualenv of its own; uv.lock and .venv are not touched.
NEXT_VENV := build/venv-next
NEXT_PYTHON ?=

.PHONY: test-next
test-next: install ## The fast suite on the newest Python here with the newest Django the dependencies allow (build/venv-next)
	@python="$(NEXT_PYTHON)"; \
	if [ -z "$$python" ]; then \
	  for version in 3.14 3.13 3.12; do \
	    for candidate in "python$$version" "$${PYENV_ROOT:-$$HOME/.pyenv}"/versions/$$version*/bin/python$$version; do \
	      "$$candidate" -c "" >/dev/null 2>&1 && { python="$$candidate"; break 2; }; \
	    done; \
	  done; \
	fi; \
	[ -n "$$python" ] || { echo "make test-next: no Python newer than 3.11 found; set NEXT_PYTHON=/path/to/python3.X" >&2; exit 2; }; \
	mkdir -p build; \
	$(UV) export --frozen --no-hashes --no-emit-project --quiet | grep -v '^django==' > build/requirements-next.txt; \
	$(UV) venv --quiet --allow-existing --python "$$python" $(NEXT_VENV) && \
	$(UV) pip install --quiet --python $(NEXT_VENV)/bin/python --compile-bytecode --upgrade-package django \
	  -r build/requirements-next.txt 'django>=5.2' && \
	echo "make test-next: $$($(NEXT_VENV)/bin/python -c 'import django, platform; print("Python", platform.python_version(), "with Django", django.get_version())')" && \
	DJANGO_SETTINGS_MODULE=config.settings.test $(NEXT_VENV)/bin/pytest -m "not integration" $(PYTEST_ARGS)

# The commands the stack runs, each with the Debian package that has it; each target checks only its
# own (a target's variable applies to its prerequisites). lwp-request stands for Perl's LWP, which
# Munin's stock nginx plugins load.
SYSTEM_COMMANDS := nginx:nginx redis-server:redis-server openssl:openssl munin-run:munin-node lwp-request:libwww-perl wrk:wrk chromium:chromium sudo:sudo
# The browser tests drive Debian's Chromium (Playwright's own browsers would be downloaded at run time);
# the runbook's test runs its commands as the site's user with sudo, as the runbook does.
test: SYSTEM_COMMANDS := nginx:nginx redis-server:redis-server openssl:openssl munin-run:munin-node lwp-request:libwww-perl chromium:chromium sudo:sudo
up: SYSTEM_COMMANDS := nginx:nginx
bench bench-scale soak: SYSTEM_COMMANDS := nginx:nginx redis-server:redis-server wrk:wrk

.PHONY: system-deps
system-deps: ## Check the system packages (nginx, redis-server, openssl, munin-node, libwww-perl, wrk, chromium, sudo); install them as root on Debian/Ubuntu
	@missing=""; \
	for pair in $(SYSTEM_COMMANDS); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/$${pair%%:*}" ] || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "Installing the system packages the stack runs:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
	  echo "The stack needs these system packages:$$missing. Install them with: sudo apt-get install -y$$missing" >&2; \
	  exit 2; \
	fi

.PHONY: lint
lint: install ## ruff, ruff format --check, mypy, import contracts, makemigrations --check, check --deploy, docs/settings.md current
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports --no-cache
	$(MANAGE) makemigrations --check --dry-run
	$(DEPLOY_CHECK_ENV) $(MANAGE) check --deploy --fail-level WARNING
	@$(BIN)/python -m config.env --reference | diff -u docs/settings.md - \
	  || { echo "docs/settings.md is out of date with config/env.py: run make settings-doc" >&2; exit 1; }

.PHONY: settings-doc
settings-doc: install ## Regenerate docs/settings.md, the reference of every variable, from config/env.py
	$(BIN)/python -m config.env --reference > docs/settings.md

.PHONY: fmt
fmt: install ## Format the code and fix what ruff can fix
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: migrations
migrations: install ## Make migrations for changed models
	$(MANAGE) makemigrations

.PHONY: app
app: install ## Create apps/NAME in the house style, installed and routed (make app NAME=inventory)
	@test -n "$(NAME)" || { echo "usage: make app NAME=<name>, e.g. make app NAME=inventory" >&2; exit 2; }
	$(MANAGE) add_app $(NAME)

# The example app leaves with everything that names it: its folder (models, API, pages, tasks,
# schedule and tests, all found by convention), its settings and its lines in .env.example.
.PHONY: remove-example
remove-example: install ## Remove the example app (apps/articles) and every reference to it, for a fork that starts empty
	@if [ ! -d apps/articles ]; then echo "The example app is already removed."; exit 0; fi; \
	rm -r apps/articles && echo "removed apps/articles/ (its settings, schedule, URLs and tests go with it)"; \
	$(BIN)/python -m config.env --reference > docs/settings.md && echo "regenerated docs/settings.md without its variables"; \
	echo "Next: make migrate (its tables stay in an existing database until you drop them), make test."

.PHONY: rename
rename: install ## Rename the project for a fork (make rename NAME=acme)
	@test -n "$(NAME)" || { echo "usage: make rename NAME=<slug>, e.g. make rename NAME=acme" >&2; exit 2; }
	$(MANAGE) rename_project $(NAME)

.PHONY: backup
backup: $(VENV_READY) ## Back up the PostgreSQL database into BACKUP_DIR (pg_dump, keeps BACKUP_KEEP)
	$(MANAGE) db_backup

.PHONY: restore
restore: $(VENV_READY) ## Restore a backup into an empty database (make restore FILE=backups/x.dump [FORCE=1])
	@test -n "$(FILE)" || { echo "usage: make restore FILE=<backup .dump file> [FORCE=1]" >&2; exit 2; }
	$(MANAGE) db_restore $(FILE) $(if $(FORCE),--force)

# Django's createsuperuser skips (and exits 0) without a terminal; with both variables set it runs
# unattended (--no-input reads DJANGO_SUPERUSER_<field>), and without them this stops, saying so.
.PHONY: superuser
superuser: migrate ## Create an admin user: asked for in a terminal, else from DJANGO_SUPERUSER_EMAIL and _PASSWORD
	@if [ -n "$$DJANGO_SUPERUSER_EMAIL" ] && [ -n "$$DJANGO_SUPERUSER_PASSWORD" ]; then \
	  $(MANAGE) createsuperuser --no-input; \
	elif [ -t 0 ]; then \
	  $(MANAGE) createsuperuser; \
	else \
	  echo "make superuser: no terminal to ask on, so no superuser was created. Run it in a terminal, or" \
	       "set both DJANGO_SUPERUSER_EMAIL and DJANGO_SUPERUSER_PASSWORD in the environment:" \
	       "DJANGO_SUPERUSER_EMAIL=admin@example.com DJANGO_SUPERUSER_PASSWORD=... make superuser" >&2; \
	  exit 2; \
	fi

.PHONY: shell
shell: $(VENV_READY) ## Django shell
	$(MANAGE) shell

.PHONY: render
render: $(VENV_READY) ## Render deploy/ (nginx, supervisor) from the environment into build/deploy/ and validate it
	$(BIN)/python -m deploy.render

.PHONY: up
up: $(VENV_READY) system-deps ## Run the production stack in the foreground: nginx :8080, gunicorn, worker, beat (Ctrl-C stops)
	$(BIN)/python -m deploy.stack up

.PHONY: down
down: $(VENV_READY) ## Stop the stack started by `make up` (from another terminal)
	$(BIN)/python -m deploy.stack down

.PHONY: status
status: $(VENV_READY) ## Show the state of the stack's programs
	$(BIN)/python -m deploy.stack status

.PHONY: bench
bench: install system-deps ## Load-test the production stack against its own ceiling (BENCH_ARTICLES=10000); see docs/benchmarks.md
	$(BIN)/python -m bench.run

.PHONY: bench-scale
bench-scale: install system-deps ## The bench's cases at 10,000 and 1,000,000 articles (COPY-seeded): does p50 stay flat?
	$(BIN)/python -m bench.run scale

.PHONY: soak
soak: install system-deps ## Hold a mixed load at 70% of capacity through nginx for SOAK_SECONDS (180); fails on any error or memory growth
	$(BIN)/python -m bench.soak

.PHONY: clean
clean: ## Remove the virtualenv, caches and build output
	rm -rf $(VENV) .uv build .pytest_cache .mypy_cache .ruff_cache
