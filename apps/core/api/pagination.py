from rest_framework.pagination import PageNumberPagination


class PageNumberPaginationWithSize(PageNumberPagination):
    """Page-number pagination where clients may ask for up to `max_page_size` items a page."""

    page_size_query_param = "page_size"
    max_page_size = 100
