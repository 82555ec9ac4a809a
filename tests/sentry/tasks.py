"""A task that fails, for the Sentry test's worker (it imports them with `--include`)."""

from apps.core.tasks import house_task


class DeliberateTaskError(RuntimeError):
    pass


@house_task
def fail_in_a_task() -> None:
    raise DeliberateTaskError("a bug in a task")
