from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns


def slow_query(request: HttpRequest) -> HttpResponse:
    """A query that sleeps in PostgreSQL for ?seconds=: a runaway report or a missing index."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [float(request.GET.get("seconds", "5"))])
    return JsonResponse({"slept": True})


# Under /api/ so that errors come in the API's error shape.
urlpatterns = [path("api/v1/test-slow-query/", slow_query, name="test-slow-query"), *project_urlpatterns]
