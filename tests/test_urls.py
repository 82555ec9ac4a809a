"""Every named route reverses: links are built from names, so a renamed path breaks nothing."""

from django.urls import URLPattern, URLResolver, get_resolver, reverse

SAMPLE_KWARGS = {"slug": "sample-slug", "pk": 1, "object_id": 1, "app_label": "users", "format": "json"}


def _named_routes(resolver: URLResolver, namespace: str = "") -> list[tuple[str, list[str]]]:
    routes = []
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            routes += _named_routes(pattern, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            routes.append((f"{namespace}{pattern.name}", list(pattern.pattern.regex.groupindex)))
    return routes


def test_every_named_route_reverses():
    routes = _named_routes(get_resolver())
    assert len(routes) > 20
    failures = []
    for name, parameters in routes:
        kwargs = {parameter: SAMPLE_KWARGS.get(parameter, "x") for parameter in parameters}
        try:
            reverse(name, kwargs=kwargs)
        except Exception as error:
            failures.append(f"{name}: {error}")
    assert failures == []


def test_the_api_lives_under_its_version_namespace():
    assert reverse("v1:users:me") == "/api/v1/users/me/"
