"""WSGI entry point for gunicorn.

It defaults to production settings: a server process must never fall back to development
by accident, and production refuses to start without its required variables.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

application = get_wsgi_application()
