"""This app's periodic tasks, merged into CELERY_BEAT_SCHEDULE (see config/project_apps.py).

Called by the settings with their environment reader: nothing here may import Django models.
"""

from typing import Any


def beat_schedule(env: Any) -> dict[str, dict[str, Any]]:
    publish_interval = env.float("ARTICLES_PUBLISH_INTERVAL", default=60.0)
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
            "schedule": env.float("ARTICLES_REINDEX_INTERVAL", default=60.0),
        },
        "articles.requeue-unnotified": {
            "task": "apps.articles.tasks.requeue_unnotified_articles",
            "schedule": env.float("ARTICLES_SWEEP_INTERVAL", default=300.0),
        },
    }
