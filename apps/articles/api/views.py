"""The articles API: public reads (cached), authors' writes, and title autocomplete."""

from dataclasses import asdict, dataclass
from functools import cached_property, partial
from typing import Any, cast

from django.conf import settings
from django.core.paginator import Paginator as DjangoPaginator
from django.db.models import QuerySet
from django.http import HttpResponse, HttpResponseBase
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from apps.articles import autocomplete, selectors, services
from apps.articles import cache as article_cache
from apps.articles.api.serializers import (
    ArticleListQuerySerializer,
    ArticleScheduleSerializer,
    ArticleSerializer,
    ArticleUpdateSerializer,
    ArticleWriteSerializer,
    AutocompleteQuerySerializer,
    AutocompleteResponseSerializer,
)
from apps.articles.models import Article
from apps.core import public_cache
from apps.core.api.pagination import PageNumberPaginationWithSize
from apps.users.models import User


@dataclass(frozen=True)
class CachedCount:
    key: str
    value: int | None
    generation: str | None


class _CountCachedPaginator(DjangoPaginator):
    """Django's paginator, with the total read from the article cache when it is there.

    COUNT(*) reads every matching row: on each uncached page of a large table it costs more than
    the page itself. The total is cached under the same generation as the pages, so any change
    to an article replaces it with the pages.
    """

    def __init__(self, *args: Any, cached_count: CachedCount | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cached_count = cached_count

    @cached_property
    def count(self) -> int:
        cached = self.cached_count
        if cached is not None and cached.value is not None:
            return int(cached.value)
        total = super().count
        if cached is not None:
            article_cache.write(cached.key, total, cached.generation)
        return total


class ArticleListPagination(PageNumberPaginationWithSize):
    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> Any:
        cached_count = getattr(view, "cached_count", None)
        self.django_paginator_class = partial(_CountCachedPaginator, cached_count=cached_count)  # type: ignore[assignment]
        return super().paginate_queryset(queryset, request, view)


# The query parameters the list's total depends on (not the ordering or the page).
_COUNT_FILTERS = [str(name) for name in ArticleListQuerySerializer().fields if name != "ordering"]


def _count_identity(request: Request) -> str:
    # The raw values: two spellings of one filter cache the same total twice, which is harmless,
    # and the key is known before validation, so one round trip reads the page and the total.
    return repr(
        sorted((name, value) for name in _COUNT_FILTERS for value in request.query_params.getlist(name))
    )


_LIST_PARAMETERS = frozenset(ArticleListQuerySerializer().fields)
_LIST_DEFAULTS = {"ordering": "-published_at"}


def _list_filters(request: Request) -> dict[str, Any]:
    """The list's validated filters. Most requests send none (page and page_size belong to the
    paginator): they skip building a DRF serializer on every uncached page."""
    if _LIST_PARAMETERS.isdisjoint(request.query_params):
        return dict(_LIST_DEFAULTS)
    query = ArticleListQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    return dict(query.validated_data)


def _user(request: Request) -> User | None:
    return request.user if isinstance(request.user, User) else None


class ArticleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Article]):
    serializer_class = ArticleSerializer
    pagination_class = ArticleListPagination
    lookup_field = "slug"
    cached_count: CachedCount | None = None
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    def get_queryset(self) -> QuerySet[Article]:
        if self.action == "list":
            filters = _list_filters(self.request)
            return selectors.article_list_published(
                author_id=filters.get("author"),
                published_after=filters.get("published_after"),
                published_before=filters.get("published_before"),
                ordering=filters["ordering"],
            )
        if self.action == "mine":
            return selectors.article_list_for_author(author=cast(User, self.request.user))
        return selectors.article_visible_to(user=_user(self.request))

    def get_object(self) -> Article:
        article = super().get_object()
        if self.request.method not in permissions.SAFE_METHODS and article.author_id != self.request.user.pk:
            raise PermissionDenied("Only the author can change this article.")
        return article

    @extend_schema(parameters=[ArticleListQuerySerializer])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:  # type: ignore[override]
        # JSON clients get the page as the bytes rendered the first time: a hit costs one cache
        # read, no serialising or rendering. Other formats (the browsable API) render as usual.
        # The page is kept here even when the front layer (apps/core/public_cache.py) stores it
        # too: signed-in clients read it here, and so does every client while the database is down.
        as_json = getattr(request.accepted_renderer, "format", None) == "json"
        # The page's next/previous links name the scheme and Host (port included) the client sent:
        # keyed by the path alone, one client's Host would be served to everyone.
        page_key = article_cache.key("list.json" if as_json else "list", request.build_absolute_uri())
        count_key = article_cache.key("count", _count_identity(request))
        generation, (cached, count) = article_cache.read(page_key, count_key)
        if cached is not None:
            return (
                self._public(HttpResponse(cached, content_type="application/json"))
                if as_json
                else Response(cached)
            )
        self.cached_count = CachedCount(count_key, count, generation)
        response = super().list(request, *args, **kwargs)
        if not as_json:
            article_cache.write(page_key, response.data, generation)
            return response
        body = request.accepted_renderer.render(
            response.data, request.accepted_media_type, self.get_renderer_context()
        )
        article_cache.write(page_key, body, generation)
        return self._public(HttpResponse(body, content_type="application/json"))

    def _public_if_json(self, response: Response) -> Response:
        if getattr(self.request.accepted_renderer, "format", None) == "json":
            self._public(response)
        return response

    def _public(self, response: HttpResponse) -> HttpResponse:
        """The page is the same for everyone: the front layer may keep it until an article changes."""
        return public_cache.allow(
            response,
            self.request,
            generation_key=article_cache.GENERATION_KEY,
            timeout=settings.ARTICLES_CACHE_TIMEOUT,
        )

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        detail_key = article_cache.key("detail", kwargs["slug"])
        generation, (cached,) = article_cache.read(detail_key)
        if cached is not None:
            return self._public_if_json(Response(cached))
        article = self.get_object()
        data = self.get_serializer(article).data
        if not article.is_published:
            return Response(data)  # the author's own draft: never cached
        article_cache.write(detail_key, data, generation)
        return self._public_if_json(Response(data))

    @extend_schema(request=ArticleWriteSerializer, responses={201: ArticleSerializer})
    def create(self, request: Request) -> Response:
        payload = ArticleWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        article = services.article_create(author=cast(User, request.user), **payload.validated_data)
        return Response(ArticleSerializer(article).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ArticleUpdateSerializer, responses={200: ArticleSerializer})
    def partial_update(self, request: Request, slug: str) -> Response:
        payload = ArticleUpdateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        article = services.article_update(article=self.get_object(), **payload.validated_data)
        return Response(ArticleSerializer(article).data)

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request: Request, slug: str) -> Response:
        services.article_delete(article=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: ArticleSerializer})
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, slug: str) -> Response:
        article = services.article_publish(article=self.get_object())
        return Response(ArticleSerializer(article).data)

    @extend_schema(request=None, responses={200: ArticleSerializer})
    @action(detail=True, methods=["post"])
    def unpublish(self, request: Request, slug: str) -> Response:
        article = services.article_unpublish(article=self.get_object())
        return Response(ArticleSerializer(article).data)

    @extend_schema(request=ArticleScheduleSerializer, responses={200: ArticleSerializer})
    @action(detail=True, methods=["post"])
    def schedule(self, request: Request, slug: str) -> Response:
        payload = ArticleScheduleSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        article = services.article_schedule(
            article=self.get_object(), publish_at=payload.validated_data["publish_at"]
        )
        return Response(ArticleSerializer(article).data)

    @extend_schema(parameters=[], responses={200: ArticleSerializer(many=True)})
    @action(detail=False, methods=["get"], permission_classes=[permissions.IsAuthenticated])
    def mine(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ArticleSerializer(page, many=True).data)

    @extend_schema(
        # The serializer that validates `q`, so the schema states its limits (minLength, maxLength).
        parameters=[AutocompleteQuerySerializer],
        responses={200: AutocompleteResponseSerializer},
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def autocomplete(self, request: Request) -> Response:
        query = AutocompleteQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        suggestions, source = autocomplete.search(query.validated_data["q"])
        return Response(
            {"results": [asdict(suggestion) for suggestion in suggestions], "served_from": source}
        )
