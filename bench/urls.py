"""The project's routes plus the bench's references, mounted only by bench/settings.py.

- `bench/hello/`: the least a Django view can do, so its req/s is what the middleware costs.
- `bench/stock-articles/`: the public list written as DRF's documentation writes one (a
  ModelSerializer, PageNumberPagination, ListAPIView), the reference the project's own list is held to.
"""

from django.http import HttpRequest, JsonResponse
from django.urls import path
from rest_framework import generics, pagination, serializers

from apps.articles.models import Article
from apps.users.models import User
from config.urls import *  # noqa: F403
from config.urls import urlpatterns as project_urlpatterns


def hello(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


class StockAuthorSerializer(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ["id", "first_name", "last_name"]


class StockArticleSerializer(serializers.ModelSerializer[Article]):
    author = StockAuthorSerializer(read_only=True)
    # The page's address, which the project's list also gives for each article.
    url = serializers.CharField(source="get_absolute_url", read_only=True)

    class Meta:
        model = Article
        fields = [
            "id",
            "title",
            "slug",
            "body",
            "author",
            "status",
            "publish_at",
            "published_at",
            "created_at",
            "updated_at",
            "url",
        ]


class StockPagination(pagination.PageNumberPagination):
    page_size = 20


class StockArticleList(generics.ListAPIView[Article]):
    queryset = Article.objects.filter(status=Article.Status.PUBLISHED).select_related("author")
    serializer_class = StockArticleSerializer
    pagination_class = StockPagination


urlpatterns = [
    path("bench/hello/", hello, name="bench-hello"),
    path("bench/stock-articles/", StockArticleList.as_view(), name="bench-stock-articles"),
    *project_urlpatterns,
]
