"""Test settings plus a URLconf with a view that fails, for the Sentry tests' server process."""

from config.settings.test import *  # noqa: F403

ROOT_URLCONF = "tests.sentry.urls"
