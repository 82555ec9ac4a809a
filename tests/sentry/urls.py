from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns


class DeliberateError(RuntimeError):
    pass


def fail(request: HttpRequest) -> HttpResponse:
    raise DeliberateError("a bug in a view")


urlpatterns = [path("test-failure/", fail, name="test-failure"), *project_urlpatterns]
