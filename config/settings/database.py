"""Database: the primary from DATABASE_URL (a SQLite file when unset, so a first run needs no
server), read replicas, timeouts and connection reuse."""

from __future__ import annotations

from typing import Any

import environ

from config.env import env_value

DATABASE_URL = env_value("DATABASE_URL")
DATABASE_CONNECT_TIMEOUT = env_value("DATABASE_CONNECT_TIMEOUT")
DATABASE_STATEMENT_TIMEOUT_MS = env_value("DATABASE_STATEMENT_TIMEOUT_MS")
# Persistent connections and psycopg's pool cannot be combined: with DATABASE_POOL on,
# CONN_MAX_AGE must be 0. The pool opens lazily on the first query, after gunicorn forks,
# because a pool opened before the fork would share sockets between workers.
DATABASE_POOL = env_value("DATABASE_POOL")


def database_config(url: str) -> dict[str, Any]:
    """Django's settings for the database at `url`, with the options its engine needs.

    SQLite and MariaDB run the whole suite too; they lack statement_timeout and the pool
    (docs/scale-out.md, "Databases"), which PostgreSQL gets here.
    """
    config: dict[str, Any] = dict(environ.Env.db_url_config(url))
    options = config.setdefault("OPTIONS", {})
    if config["ENGINE"] == "django.db.backends.postgresql":
        options["connect_timeout"] = DATABASE_CONNECT_TIMEOUT
        # A runaway query is cancelled by the server instead of holding a worker forever.
        options["options"] = f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT_MS}"
        if DATABASE_POOL:
            options["pool"] = {
                "min_size": env_value("DATABASE_POOL_MIN_SIZE"),
                "max_size": env_value("DATABASE_POOL_MAX_SIZE"),
                "timeout": env_value("DATABASE_POOL_TIMEOUT"),
            }
    elif config["ENGINE"] == "django.db.backends.mysql":
        # utf8mb4: MySQL's "utf8" stores only 3-byte characters and rejects emoji.
        options["charset"] = "utf8mb4"
        # Strict mode: an over-long or invalid value is an error, not silently truncated.
        options["init_command"] = "SET sql_mode='STRICT_TRANS_TABLES'"
        options["connect_timeout"] = DATABASE_CONNECT_TIMEOUT
        # The test database is created by Django, with the server's default charset unless told.
        config["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
    elif config["ENGINE"] == "django.db.backends.sqlite3":
        # Seconds a writer waits for another process's lock before "database is locked".
        options["timeout"] = env_value("DATABASE_SQLITE_TIMEOUT")
        # Take the write lock at BEGIN: a read lock upgraded mid-transaction cannot wait, only fail.
        options["transaction_mode"] = "IMMEDIATE"
    if DATABASE_POOL:
        config["CONN_MAX_AGE"] = 0
    else:
        config["CONN_MAX_AGE"] = env_value("CONN_MAX_AGE")
        # A connection that died while idle is replaced before the request uses it.
        config["CONN_HEALTH_CHECKS"] = True
    return config


DATABASES = {"default": database_config(DATABASE_URL)}

# Read replicas: reads go to a replica, writes to the primary, and a client that just wrote
# reads from the primary for a few seconds, so it never sees its own write missing
# (apps/core/data/db_router.py). Empty: every query goes to the primary.
DATABASE_REPLICA_URLS: list[str] = env_value("DATABASE_REPLICA_URLS")
DATABASE_READ_YOUR_WRITES_SECONDS = env_value("DATABASE_READ_YOUR_WRITES_SECONDS")
DATABASE_REPLICAS: list[str] = []
for _index, _url in enumerate(DATABASE_REPLICA_URLS):
    DATABASE_REPLICAS.append(f"replica_{_index}")
    # In tests a replica is the primary's test database: Django creates no database for it.
    DATABASES[f"replica_{_index}"] = {**database_config(_url), "TEST": {"MIRROR": "default"}}
DATABASE_ROUTERS = ["apps.core.data.db_router.PrimaryReplicaRouter"]
