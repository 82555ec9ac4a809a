from rest_framework.routers import SimpleRouter

from apps.articles.api.views import ArticleViewSet

app_name = "articles"

router = SimpleRouter()
router.register("articles", ArticleViewSet, basename="article")

urlpatterns = router.urls
