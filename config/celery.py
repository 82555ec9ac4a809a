"""The Celery application: configured from Django settings (CELERY_ namespace)."""

import os

from celery import Celery

# Like wsgi.py: a worker started without DJANGO_SETTINGS_MODULE runs production settings,
# which refuse to start when their variables are missing, instead of silently running development.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
