from django.urls import path

from apps.users.api import views

app_name = "users"

urlpatterns = [
    path("auth/csrf/", views.CsrfTokenView.as_view(), name="csrf"),
    path("auth/login/", views.SessionLoginView.as_view(), name="login"),
    path("auth/logout/", views.SessionLogoutView.as_view(), name="logout"),
    path("auth/token/", views.TokenObtainView.as_view(), name="token"),
    path("auth/token/revoke/", views.TokenRevokeView.as_view(), name="token-revoke"),
    path("users/me/", views.MeView.as_view(), name="me"),
]
