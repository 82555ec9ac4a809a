from django.http import HttpRequest, HttpResponse
from django.urls import path

from apps.core.tasks import enqueue
from config.urls import urlpatterns as project_urlpatterns
from tests.sentry.tasks import fail_in_a_task


class DeliberateError(RuntimeError):
    pass


def fail(request: HttpRequest) -> HttpResponse:
    raise DeliberateError("a bug in a view")


def queue_a_failing_task(request: HttpRequest) -> HttpResponse:
    enqueue(fail_in_a_task)
    return HttpResponse(status=202)


urlpatterns = [
    path("test-failure/", fail, name="test-failure"),
    path("test-queue-failing-task/", queue_a_failing_task, name="test-queue-failing-task"),
    *project_urlpatterns,
]
