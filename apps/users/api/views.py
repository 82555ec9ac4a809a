"""Authentication and the current user. Browsers use the session; other clients a token."""

from typing import Any, cast

from django.middleware.csrf import get_token
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, permissions, status
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from apps.core.api.schema import ErrorSerializer
from apps.users import services
from apps.users.api.serializers import (
    CsrfTokenSerializer,
    LoginSerializer,
    TokenSerializer,
    UserSerializer,
)
from apps.users.models import User


def _authenticated_user(request: Request) -> User:
    serializer = LoginSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    user = services.user_authenticate(
        request=request._request,
        email=serializer.validated_data["email"],
        password=serializer.validated_data["password"],
    )
    # A locked-out client also ends here; django-axes' middleware then answers 429
    # (apps.core.http.views.locked_out).
    if user is None:
        raise AuthenticationFailed("Email or password is incorrect.")
    return user


_LOGIN_EXAMPLE = OpenApiExample(
    "Credentials",
    value={"email": "ada@example.com", "password": "correct horse battery staple"},
    request_only=True,
)


class LoginThrottledView(APIView):
    # A refused login is 401 only if the view's first authentication class names a scheme for the
    # WWW-Authenticate header (DRF: "Unauthorized and Forbidden responses"); the token's does. It
    # authenticates only a request that sends a token, and these views do not care who that is.
    authentication_classes = [TokenAuthentication]
    permission_classes = [permissions.AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"


@method_decorator(csrf_protect, name="dispatch")
class SessionLoginView(LoginThrottledView):
    """Sign in with the session cookie: for a browser on this site, which must send the CSRF token.

    DRF's views are exempt from Django's CSRF check, and a login has no session yet for DRF's own
    check to apply to; without this one, a form on any site could sign a visitor in as the attacker.
    Django's check (Origin, then token) runs before the credentials are read.
    """

    @extend_schema(
        summary="Sign in with a session cookie",
        request=LoginSerializer,
        examples=[_LOGIN_EXAMPLE],
        responses={
            200: UserSerializer,
            403: OpenApiResponse(
                ErrorSerializer,
                description="csrf_failed: no valid CSRF token (GET auth/csrf/ first) or a foreign Origin.",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        user = _authenticated_user(request)
        services.user_session_login(request=request._request, user=user)
        return Response(UserSerializer(user).data)


@method_decorator(never_cache, name="dispatch")
class CsrfTokenView(APIView):
    """The CSRF token a browser sends back in the X-CSRFToken header, also set as its cookie.

    The cookie is HttpOnly in production, so a page's script reads the token here. Signing in
    rotates it: fetch it again after a login.
    """

    authentication_classes: list[Any] = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(summary="Get a CSRF token", responses={200: CsrfTokenSerializer})
    def get(self, request: Request) -> Response:
        return Response({"csrf_token": get_token(request._request)})


class SessionLogoutView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(summary="Sign out of the session", request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        services.user_session_logout(request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenObtainView(LoginThrottledView):
    """A token for a client that is not a browser. No cookie is set, so no CSRF check is needed."""

    @extend_schema(
        summary="Get an API token",
        request=LoginSerializer,
        examples=[_LOGIN_EXAMPLE],
        responses={200: TokenSerializer},
    )
    def post(self, request: Request) -> Response:
        user = _authenticated_user(request)
        return Response({"token": services.user_token_issue(user=user)})


class TokenRevokeView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(summary="Revoke my API token", request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        services.user_token_revoke(user=cast(User, request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    get=extend_schema(summary="Read my account"),
    put=extend_schema(
        summary="Replace my account's details",
        examples=[
            OpenApiExample(
                "A full name", value={"first_name": "Ada", "last_name": "Lovelace"}, request_only=True
            )
        ],
    ),
    patch=extend_schema(
        summary="Edit my account's details",
        examples=[OpenApiExample("A new name", value={"first_name": "Ada"}, request_only=True)],
    ),
)
class MeView(generics.RetrieveUpdateAPIView[User]):
    serializer_class = UserSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_object(self) -> User:
        return cast(User, self.request.user)
