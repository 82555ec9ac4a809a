"""WSGI entry point for gunicorn (and runserver, through WSGI_APPLICATION).

It defaults to production settings: a server process must never fall back to development
by accident, and production refuses to start without its required variables. The liveness
probe and anonymous reads of cached public pages are answered in front of Django
(apps/core/liveness.py and apps/core/public_cache.py say why).
"""

import os

from django.core.wsgi import get_wsgi_application

from apps.core.liveness import with_liveness
from apps.core.public_cache import with_public_cache

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")


application = with_liveness(with_public_cache(get_wsgi_application()))
