"""Top-level URLconf. Every route is named; API routes are namespaced under their version."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.core.http import views as core_views
from config import project_apps

api_v1_patterns = [path("", include(module)) for module in project_apps.api_url_modules()]

urlpatterns = [
    path("", core_views.home, name="home"),
    *(path(prefix, include(module)) for prefix, module in project_apps.page_url_modules()),
    path("readyz", core_views.readyz, name="readyz"),
    path("favicon.ico", core_views.favicon, name="favicon"),
    path(settings.ADMIN_URL, admin.site.urls),
    path("api/v1/", include((api_v1_patterns, "v1"), namespace="v1")),
    # JSON as application/json by default, which a browser shows rather than downloads; YAML for
    # `?format=yaml` or an Accept that asks for it (drf-spectacular's own order starts with YAML).
    path(
        "api/schema/",
        SpectacularAPIView.as_view(
            api_version="v1",
            renderer_classes=[
                OpenApiJsonRenderer2,
                OpenApiJsonRenderer,
                OpenApiYamlRenderer,
                OpenApiYamlRenderer2,
            ],
        ),
        name="api-schema",
    ),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

# JSON error bodies for API paths, Django's HTML pages elsewhere.
handler400 = "apps.core.http.views.bad_request"
handler403 = "apps.core.http.views.permission_denied"
handler404 = "apps.core.http.views.page_not_found"
handler500 = "apps.core.http.views.server_error"
