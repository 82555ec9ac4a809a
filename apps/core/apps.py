from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        # Connects the Celery signals that carry request ids into tasks, in every process
        # (web, shell, worker), whether or not the code that queues has imported it.
        # Also registers the monitoring task and the per-task metric signals.
        from apps.core import celery_metrics, monitoring_tasks, tasks  # noqa: F401

        celery_metrics.connect()
