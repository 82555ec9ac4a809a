"""Server-rendered pages. Links come from {% url %} in the templates, redirects from reverse()."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from apps.articles import selectors
from apps.articles.autocomplete import QUERY_MAX_LENGTH
from apps.articles.models import Article
from apps.articles.pagination import CappedCountPaginator

PAGE_SIZE = 20
RECENTLY_VIEWED_SESSION_KEY = "articles:recently_viewed"
RECENTLY_VIEWED_LIMIT = 5


@require_safe
def article_list(request: HttpRequest) -> HttpResponse:
    """The published articles, newest first; `?q=` keeps those whose title contains it.

    The search box suggests titles from the autocomplete API as one types; without JavaScript
    the same box submits here as a plain GET.
    """
    query = request.GET.get("q", "").strip()[:QUERY_MAX_LENGTH]
    articles = selectors.article_list_published()
    if query:
        articles = articles.filter(title__icontains=query)
    page_obj = CappedCountPaginator(articles, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "articles/article_list.html",
        {"page_obj": page_obj, "paginator": page_obj.paginator, "query": query},
    )


def _remember_viewed(request: HttpRequest, article: Article) -> list[int]:
    """Keep the last few article ids in the session, newest first; return the ones before this."""
    previous = [pk for pk in request.session.get(RECENTLY_VIEWED_SESSION_KEY, []) if pk != article.pk]
    request.session[RECENTLY_VIEWED_SESSION_KEY] = [article.pk, *previous][:RECENTLY_VIEWED_LIMIT]
    return previous[: RECENTLY_VIEWED_LIMIT - 1]


@require_safe
def article_detail(request: HttpRequest, slug: str) -> HttpResponse:
    article = get_object_or_404(selectors.article_list_published(), slug=slug)
    previous_ids = _remember_viewed(request, article)
    by_id = selectors.article_list_published().in_bulk(previous_ids)
    recently_viewed = [by_id[pk] for pk in previous_ids if pk in by_id]
    return render(
        request, "articles/article_detail.html", {"article": article, "recently_viewed": recently_viewed}
    )
