# Keel: the one entry point for humans and CI. `make` alone lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
# uv from PATH if the machine has it, else a private copy installed on first use.
UV := $(or $(shell command -v uv 2>/dev/null),.uv/bin/uv)
MANAGE := $(BIN)/python manage.py
export DJANGO_SETTINGS_MODULE ?= config.settings.development

# A production environment that passes `check --deploy`: the README's minimal production env.
DEPLOY_CHECK_ENV := DJANGO_SETTINGS_MODULE=config.settings.production DEBUG=false \
	SECRET_KEY=lint-check-only-$$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n') \
	ALLOWED_HOSTS=example.com

.PHONY: help
help: ## List the targets
	@echo "Keel: make <target>"
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

.uv/bin/uv:
	@echo "uv not found; installing it into .uv/"
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Keel needs Python 3.11 or newer; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet uv

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

.PHONY: install
install: $(VENV)/.synced ## Create .venv and install the locked dependencies

.PHONY: migrate
migrate: install ## Apply database migrations
	$(MANAGE) migrate --no-input

.PHONY: run
run: migrate ## Run the development server on 127.0.0.1:$PORT (embedded defaults unless .env says otherwise)
	@echo "Keel is starting at http://127.0.0.1:$(PORT)/  (API docs: http://127.0.0.1:$(PORT)/api/docs/)"
	$(MANAGE) runserver 127.0.0.1:$(PORT)

# The database `make test` runs on: postgres (default), sqlite or mariadb. An exported
# DATABASE_URL names the server; DB then only checks that it is of the kind asked for.
# The test profile is forced: the development default exported above would win over pytest.ini.
DB ?= postgres
TEST_DATABASE_URL_postgres := postgres://postgres@127.0.0.1:5432/keel
TEST_DATABASE_URL_mariadb := mysql://root@127.0.0.1:3306/keel
TEST_DATABASE_URL_sqlite := sqlite:///$(CURDIR)/build/test-keel.sqlite3
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
	$(UV) sync --frozen --group mysql --python $(PYTHON)
	@touch $@

.PHONY: test
test: install $(if $(filter mariadb,$(DB)),$(VENV)/.synced-mysql) ## Run the suite on DB=postgres (default), sqlite or mariadb, with the real Redis
	@case "$(DB)" in postgres|sqlite|mariadb) ;; \
	  *) echo "DB must be postgres, sqlite or mariadb (got '$(DB)')" >&2; exit 2 ;; esac
	@url="$${DATABASE_URL:-$(TEST_DATABASE_URL_$(DB))}"; \
	case "$$url" in $(TEST_DATABASE_SCHEME_$(DB))*) ;; \
	  *) echo "DATABASE_URL ($${url%%://*}://...) is not a $(DB) URL; unset it or pick the matching DB=" >&2; \
	     exit 2 ;; esac; \
	mkdir -p build; \
	echo "make test: $(DB) at $${url##*@}"; \
	DJANGO_SETTINGS_MODULE=config.settings.test DATABASE_URL="$$url" $(BIN)/pytest $(PYTEST_ARGS)

.PHONY: lint
lint: install ## ruff, ruff format --check, mypy, makemigrations --check, check --deploy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(MANAGE) makemigrations --check --dry-run
	$(DEPLOY_CHECK_ENV) $(MANAGE) check --deploy --fail-level WARNING

.PHONY: fmt
fmt: install ## Format the code and fix what ruff can fix
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: superuser
superuser: migrate ## Create an admin user interactively
	$(MANAGE) createsuperuser

.PHONY: shell
shell: install ## Django shell
	$(MANAGE) shell

.PHONY: clean
clean: ## Remove the virtualenv, caches and build output
	rm -rf $(VENV) .uv build .pytest_cache .mypy_cache .ruff_cache
