from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.articles import services
from apps.articles.models import Article
from apps.articles.pagination import CappedCountPaginator


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    # Few columns, so the title has room beside the filters at a laptop's width.
    list_display = ["title", "author", "status", "published_at"]
    list_filter = ["status", "published_at", "publish_at"]
    search_fields = ["title", "slug", "author__email"]
    list_select_related = ["author"]
    prepopulated_fields = {"slug": ["title"]}
    raw_id_fields = ["author"]
    readonly_fields = ["published_at", "author_notified_at", "created_at", "updated_at"]
    actions = ["publish", "unpublish"]
    # A changelist costs the same at any table size: no full COUNT(*) beside the filtered one, a
    # filtered count bounded by the paginator, and no date_hierarchy (its year links read every
    # row's date); the published_at filter narrows by date instead.
    show_full_result_count = False
    paginator = CappedCountPaginator

    # The change form and deletes save through the ORM, not the services: they still owe the
    # follow-up work (cached pages, the autocomplete index).
    def save_model(self, request: HttpRequest, obj: Article, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        services.article_changed_elsewhere(article_id=obj.pk)

    def delete_model(self, request: HttpRequest, obj: Article) -> None:
        article_id = obj.pk
        super().delete_model(request, obj)
        services.article_changed_elsewhere(article_id=article_id)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Article]) -> None:
        article_ids = list(queryset.values_list("pk", flat=True))
        super().delete_queryset(request, queryset)
        for article_id in article_ids:
            services.article_changed_elsewhere(article_id=article_id)

    @admin.action(description="Publish the selected articles now")
    def publish(self, request: HttpRequest, queryset: QuerySet[Article]) -> None:
        for article in queryset:
            services.article_publish(article=article)
        self.message_user(request, f"Published {queryset.count()} article(s).", messages.SUCCESS)

    @admin.action(description="Unpublish the selected articles")
    def unpublish(self, request: HttpRequest, queryset: QuerySet[Article]) -> None:
        for article in queryset:
            services.article_unpublish(article=article)
        self.message_user(request, f"Unpublished {queryset.count()} article(s).", messages.SUCCESS)
