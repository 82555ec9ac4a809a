"""Test settings plus a URLconf with a deliberately slow query, for the statement-timeout test's server."""

from config.settings.test import *  # noqa: F403

ROOT_URLCONF = "tests.faults.urls"
