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

.PHONY: test
test: install ## Run the test suite against the real PostgreSQL and Redis
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/pytest $(PYTEST_ARGS)

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

.PHONY: render
render: install ## Render deploy/ (nginx, supervisor) from the environment into build/deploy/ and validate it
	$(BIN)/python -m deploy.render

.PHONY: up
up: install ## Run the production stack in the foreground: nginx :8080, gunicorn, worker, beat (Ctrl-C stops)
	$(BIN)/python -m deploy.stack up

.PHONY: down
down: install ## Stop the stack started by `make up` (from another terminal)
	$(BIN)/python -m deploy.stack down

.PHONY: status
status: install ## Show the state of the stack's programs
	$(BIN)/python -m deploy.stack status

.PHONY: clean
clean: ## Remove the virtualenv, caches and build output
	rm -rf $(VENV) .uv build .pytest_cache .mypy_cache .ruff_cache
