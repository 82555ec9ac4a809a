"""Authentication and the current user. Browsers use the session; other clients a token."""

from typing import Any, cast

from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, status
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from apps.users import services
from apps.users.api.serializers import LoginSerializer, TokenSerializer, UserSerializer
from apps.users.models import User


def _request_user(request: Request) -> User:
    """The authenticated user of a view guarded by IsAuthenticated."""
    return cast(User, request.user)


def _authenticated_user(request: Request) -> User:
    serializer = LoginSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    user = services.user_authenticate(
        request=request._request,
        email=serializer.validated_data["email"],
        password=serializer.validated_data["password"],
    )
    # A locked-out client also ends here; django-axes' middleware then answers 429 (core.views.locked_out).
    if user is None:
        raise AuthenticationFailed("Email or password is incorrect.")
    return user


class LoginThrottledView(APIView):
    permission_classes = [permissions.AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"


class SessionLoginView(LoginThrottledView):
    # No session authentication here: CSRF is checked by Django's login, not for anonymous posts.
    authentication_classes: list[Any] = []

    @extend_schema(request=LoginSerializer, responses={200: UserSerializer})
    def post(self, request: Request) -> Response:
        user = _authenticated_user(request)
        services.user_session_login(request=request._request, user=user)
        return Response(UserSerializer(user).data)


class SessionLogoutView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        services.user_session_logout(request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenObtainView(LoginThrottledView):
    authentication_classes: list[Any] = []

    @extend_schema(request=LoginSerializer, responses={200: TokenSerializer})
    def post(self, request: Request) -> Response:
        user = _authenticated_user(request)
        return Response({"token": services.user_token_issue(user=user)})


class TokenRevokeView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        services.user_token_revoke(user=_request_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(generics.RetrieveUpdateAPIView[User]):
    serializer_class = UserSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_object(self) -> User:
        return _request_user(self.request)
