"""Test settings for a worker whose pool process dies right after it sends its first email."""

from config.settings.test import *  # noqa: F403

EMAIL_BACKEND = "tests.faults.tasks.SendThenDieEmailBackend"
