from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.articles import services
from apps.articles.models import Article


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    list_display = ["title", "author", "status", "publish_at", "published_at", "updated_at"]
    list_filter = ["status", "published_at", "publish_at"]
    search_fields = ["title", "slug", "author__email"]
    list_select_related = ["author"]
    prepopulated_fields = {"slug": ["title"]}
    raw_id_fields = ["author"]
    readonly_fields = ["published_at", "author_notified_at", "created_at", "updated_at"]
    date_hierarchy = "published_at"
    actions = ["publish", "unpublish"]

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
