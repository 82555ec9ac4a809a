from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        # Connects the Celery signals that carry request ids into tasks, in every process
        # (web, shell, worker), whether or not the code that queues has imported it.
        # Also registers the monitoring task and the per-task metric signals.
        from django.conf import settings

        from apps.core.tasks import monitoring, queueing, task_metrics  # noqa: F401

        if settings.SENTRY_DSN:
            from apps.core.observability import sentry

            sentry.tag_events_with_request_id()
