"""The articles app's settings: its environment variables, declared here, and the settings they make.

config/project_apps.py merges `settings()` into Django's settings and `VARIABLES` into the
settings reference (docs/settings.md). The settings import this module: nothing here may import
Django models or settings.
"""

from typing import Any

from config.env import SETTINGS, TEST_RUN_PREFIX, Derived, Var, env_value, redis_url_for_db

TOPIC = "Articles (the reference app)"


def _autocomplete_redis_url(read: Any) -> str:
    return redis_url_for_db(read("REDIS_URL"), 2) if read("REDIS_URL") else ""


VARIABLES = (
    Var(
        "ARTICLES_CACHE_TIMEOUT",
        "int",
        300,
        "Seconds the API's view cache keeps a list page or an article; any change drops them all.",
        (SETTINGS,),
        TOPIC,
    ),
    # Longer than a task's retry window plus the broker's visibility timeout (TASK_RETRY_WINDOW,
    # CELERY_VISIBILITY_TIMEOUT), so a notification still retrying, or held by a worker that died,
    # is not queued a second time: the sweep re-queues only what was lost.
    Var(
        "ARTICLES_NOTIFY_GRACE_SECONDS",
        "int",
        1800,
        "Seconds after publication before the sweep re-queues an author notification still unsent.",
        (SETTINGS,),
        TOPIC,
    ),
    Var(
        "ARTICLES_PUBLISH_INTERVAL",
        "float",
        60.0,
        "Seconds between runs of scheduled publishing.",
        (SETTINGS,),
        TOPIC,
    ),
    Var(
        "ARTICLES_REINDEX_INTERVAL",
        "float",
        60.0,
        "Seconds between autocomplete index sweeps (reindex what changed, rebuild a missing index).",
        (SETTINGS,),
        TOPIC,
    ),
    Var(
        "ARTICLES_SWEEP_INTERVAL", "float", 300.0, "Seconds between notification sweeps.", (SETTINGS,), TOPIC
    ),
    Var(
        "AUTOCOMPLETE_REDIS_URL",
        "str",
        Derived(
            "database 2 of REDIS_URL; unset: autocomplete answers from the database", _autocomplete_redis_url
        ),
        "The autocomplete index's Redis, rebuilt from the database.",
        (SETTINGS,),
        TOPIC,
    ),
    Var(
        "AUTOCOMPLETE_KEY_PREFIX",
        "str",
        Derived("PROJECT_SLUG", lambda read: read("PROJECT_SLUG")),
        "Prefix of the autocomplete index's keys.",
        (SETTINGS,),
        TOPIC,
        {"test": TEST_RUN_PREFIX},
    ),
)


def settings(profile: str | None = None) -> dict[str, Any]:
    """The Django settings of this app, one per variable above except the beat intervals (schedule.py)."""
    names = (
        "ARTICLES_CACHE_TIMEOUT",
        "ARTICLES_NOTIFY_GRACE_SECONDS",
        "AUTOCOMPLETE_REDIS_URL",
        "AUTOCOMPLETE_KEY_PREFIX",
    )
    return {name: env_value(name, profile=profile) for name in names}
