"""WSGI entry point for gunicorn (and runserver, through WSGI_APPLICATION).

It defaults to production settings: a server process must never fall back to development
by accident, and production refuses to start without its required variables. The liveness
probe is answered before Django (apps/core/http/liveness.py says why).
"""

import os

from django.core.wsgi import get_wsgi_application

from apps.core.http.liveness import with_liveness

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

application = with_liveness(get_wsgi_application())
