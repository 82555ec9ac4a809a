from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from apps.core import celery_metrics, monitoring_tasks  # noqa: F401 - registers the task

        celery_metrics.connect()
