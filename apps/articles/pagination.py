"""Pagination whose cost does not grow with the table (the HTML list and the admin)."""

from functools import cached_property
from typing import cast

from django.core.paginator import Paginator
from django.db.models import QuerySet


class CappedCountPaginator(Paginator):
    """Django's paginator, counting at most `max_count` rows.

    COUNT(*) reads every matching row, and OFFSET skips rows by reading them: on a large table both
    cost a page view seconds of database time. Counting a LIMITed subquery bounds both: a list
    longer than `max_count` shows its first `max_count` rows in pages, and a page number past them
    gives the last of those pages (`get_page`) or EmptyPage (`page`). Older rows are reached by
    filtering (a date, an author, a search), which the indexes serve at any depth.
    """

    max_count = 10_000

    @cached_property
    def count(self) -> int:
        return cast(QuerySet, self.object_list)[: self.max_count].count()
