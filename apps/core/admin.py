from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.http.navigation import site_name
from apps.core.models import DeadLetter
from apps.core.tasks.queueing import dead_letters_rerun

# The project's name on every admin page. Set here, not from a template context processor: Django's
# sign-in view puts the request's Host in the context as `site_name`, which would win there.
admin.site.site_header = f"{site_name()} administration"
admin.site.site_title = f"{site_name()} admin"


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ["task_name", "created_at", "attempts", "first_error_line", "rerun_at"]
    list_filter = ["task_name", ("rerun_at", admin.EmptyFieldListFilter)]
    search_fields = ["task_name", "task_id", "error"]
    readonly_fields = [field.name for field in DeadLetter._meta.fields]
    date_hierarchy = "created_at"
    actions = ["run_again"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="error")
    def first_error_line(self, obj: DeadLetter) -> str:
        lines = obj.error.strip().splitlines()
        return lines[-1][:200] if lines else ""

    @admin.action(description="Run the selected tasks again")
    def run_again(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        queued, problems = dead_letters_rerun(queryset)
        if queued:
            self.message_user(request, f"Queued {queued} task(s) again.", messages.SUCCESS)
        for problem in problems:
            self.message_user(request, problem, messages.ERROR)
