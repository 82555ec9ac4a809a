"""The articles API: public reads (cached), authors' writes, and title autocomplete."""

from dataclasses import asdict
from typing import Any, cast

from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.pagination import CursorPagination
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
from apps.core.api.pagination import PageNumberPaginationWithSize
from apps.users.models import User


class ArticleListPagination(CursorPagination):
    """DRF's cursor pagination: each page starts where the last one ended (WHERE published_at < x,
    read from an index), so any page costs what the first one does; a page number would make the
    database read and skip every row before it, and its total would count them all."""

    page_size_query_param = "page_size"
    max_page_size = 100

    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: Any) -> tuple[str, ...]:
        # The selector's ordering, which the query serializer chose from PUBLIC_ORDERINGS.
        return tuple(str(field) for field in queryset.query.order_by)


def _user(request: Request) -> User | None:
    return request.user if isinstance(request.user, User) else None


@extend_schema_view(
    list=extend_schema(summary="List published articles", description="Newest first; public, cached."),
    retrieve=extend_schema(
        summary="Read an article", description="A published article, or the caller's own draft."
    ),
    create=extend_schema(
        summary="Write a draft",
        description="The caller is the author. The slug comes from the title unless given.",
        examples=[
            OpenApiExample(
                "A draft",
                value={"title": "Deploying on a Friday", "body": "Why we no longer fear it."},
                request_only=True,
            )
        ],
    ),
    partial_update=extend_schema(
        summary="Edit an article",
        description="Only its author; send only the fields that change.",
        examples=[OpenApiExample("A new title", value={"title": "Deploying on any day"}, request_only=True)],
    ),
    destroy=extend_schema(summary="Delete an article", description="Only its author."),
    publish=extend_schema(summary="Publish now", description="Only its author; visible to everyone at once."),
    unpublish=extend_schema(summary="Unpublish", description="Only its author; back to a draft."),
    schedule=extend_schema(
        summary="Publish later",
        description="Only its author; beat publishes it when the time comes.",
        examples=[
            OpenApiExample("Next Monday", value={"publish_at": "2030-01-07T09:00:00Z"}, request_only=True)
        ],
    ),
    mine=extend_schema(summary="List my articles", description="The caller's drafts and published articles."),
    autocomplete=extend_schema(
        summary="Suggest titles", description="Up to ten published titles starting with `q`, any case."
    ),
)
class ArticleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Article]):
    serializer_class = ArticleSerializer
    pagination_class = ArticleListPagination
    lookup_field = "slug"
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    def get_queryset(self) -> QuerySet[Article]:
        if self.action == "list":
            if "page" in self.request.query_params:
                raise ValidationError({"page": ["This list pages by cursor: follow the `next` link."]})
            query = ArticleListQuerySerializer(data=self.request.query_params)
            query.is_valid(raise_exception=True)
            return selectors.article_list_published(
                author_id=query.validated_data.get("author"),
                published_after=query.validated_data.get("published_after"),
                published_before=query.validated_data.get("published_before"),
                ordering=query.validated_data["ordering"],
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
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # The page's next/previous links name the scheme and Host the client sent, so the whole
        # URL is the key: keyed by the path alone, one client's Host would be served to everyone.
        build_page = super().list
        page = article_cache.cached(
            f"list:{request.build_absolute_uri()}", lambda: build_page(request, *args, **kwargs).data
        )
        return Response(page)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # A published article is the same for every reader and is cached; an author's draft never is.
        try:
            article = article_cache.cached(f"detail:{kwargs['slug']}", self._published_article)
        except Http404:
            if not request.user.is_authenticated:
                raise
            return super().retrieve(request, *args, **kwargs)
        return Response(article)

    def _published_article(self) -> dict[str, Any]:
        article = get_object_or_404(selectors.article_list_published(), slug=self.kwargs["slug"])
        return self.get_serializer(article).data

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
    @action(
        detail=False,
        methods=["get"],
        permission_classes=[permissions.IsAuthenticated],
        pagination_class=PageNumberPaginationWithSize,  # an author's own list: nothing cached
    )
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
