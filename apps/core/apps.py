from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        # Connects the Celery signals that carry request ids into tasks, in every process
        # (web, shell, worker), whether or not the code that queues has imported it.
        from apps.core import tasks  # noqa: F401
