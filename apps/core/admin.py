from django.contrib import admin, messages
from django.db.models import QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest

from apps.core.http.navigation import site_name
from apps.core.models import DeadLetter
from apps.core.tasks.queueing import dead_letters_rerun

# The project's name on every admin page. Set here, not from a template context processor: Django's
# sign-in view puts the request's Host in the context as `site_name`, which would win there.
admin.site.site_header = f"{site_name()} administration"
admin.site.site_title = f"{site_name()} admin"

SEARCH_TERM_MAX_LENGTH = 1_000


class GuardedModelAdmin(admin.ModelAdmin):
    """The base of every ModelAdmin: a changelist URL's lookup filters or is a 400, never a 500.

    Django applies any lookup a URL names to the fields a changelist filters on. A regex the
    database cannot compile, or a year outside what Python's datetime holds (a year lookup, and the
    date hierarchy, build datetimes from it, the hierarchy the next year's too), would raise while
    the page renders: a 500 with a traceback in the log. Refused here, they are Django's
    DisallowedModelAdminLookup, a 400. The admin's own filters and links never send them. A
    search term is cut to a length the databases all take.
    """

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        parts = set(lookup.split(LOOKUP_SEP))
        if parts & {"regex", "iregex"}:
            return False
        if parts & {"year", "iso_year"} and not (str(value).isdigit() and 1 <= int(value) < 9999):
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        # Longer than anything worth finding; SQLite refuses a LIKE pattern over 50,000 bytes (a
        # 500), and each word of a longer term is one more condition on every search field.
        return super().get_search_results(request, queryset, search_term[:SEARCH_TERM_MAX_LENGTH])


@admin.register(DeadLetter)
class DeadLetterAdmin(GuardedModelAdmin):
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
