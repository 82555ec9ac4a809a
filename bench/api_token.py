"""An API token for `make bench`'s signed-in case; run with the stack's environment.

    python -m bench.api_token

Creates (or reuses) one bench user and prints its DRF token. Requests carrying it skip the front
cache, which serves only anonymous clients, so the signed-in case measures a cached article list
served through Django: middleware, token authentication, DRF and the view's own cache.
"""

from __future__ import annotations

import json

import django

django.setup()

from rest_framework.authtoken.models import Token  # noqa: E402

from apps.users.models import User  # noqa: E402

if __name__ == "__main__":
    user, _ = User.objects.get_or_create(email="bench-reader@example.com")
    token, _ = Token.objects.get_or_create(user=user)
    print(f"BENCH_JSON {json.dumps({'token': token.key})}")
