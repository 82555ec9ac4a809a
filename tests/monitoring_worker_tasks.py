"""Tasks that only the monitoring tests' worker loads (celery worker -I), to produce each outcome."""

from celery import Task, shared_task


@shared_task(name="tests.monitoring.fails")
def fails() -> None:
    raise RuntimeError("fails on purpose, for the failure counter")


@shared_task(bind=True, name="tests.monitoring.retries_once", max_retries=1)
def retries_once(self: Task) -> str:
    if self.request.retries == 0:
        raise self.retry(countdown=0)
    return "done after one retry"
