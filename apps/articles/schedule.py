"""This app's periodic tasks, merged into CELERY_BEAT_SCHEDULE (see config/project_apps.py).

Called by the settings: nothing here may import Django models.
"""

from typing import Any

from config.env import env_value


def beat_schedule() -> dict[str, dict[str, Any]]:
    publish_interval = env_value("ARTICLES_PUBLISH_INTERVAL")
    return {
        "articles.publish-due": {
            "task": "apps.articles.tasks.publish_due_articles",
            "schedule": publish_interval,
            # A copy older than one interval is superseded by the next one.
            "options": {"expire_seconds": int(max(publish_interval, 1))},
        },
        # The autocomplete index: reindexes what changed since the last run, rebuilds it if missing.
        "articles.reindex-changed": {
            "task": "apps.articles.tasks.sweep_autocomplete_index",
            "schedule": env_value("ARTICLES_REINDEX_INTERVAL"),
        },
        "articles.requeue-unnotified": {
            "task": "apps.articles.tasks.requeue_unnotified_articles",
            "schedule": env_value("ARTICLES_SWEEP_INTERVAL"),
        },
    }
