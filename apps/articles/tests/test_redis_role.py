"""Autocomplete's Redis role: database 2 of REDIS_URL unless AUTOCOMPLETE_REDIS_URL names another."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def settings_in_a_fresh_process(**environment: str) -> str:
    code = "from django.conf import settings; print(json.dumps(settings.AUTOCOMPLETE_REDIS_URL))"
    result = subprocess.run(
        [sys.executable, "-c", f"import json, django; django.setup(); {code}"],
        env={
            "PATH": os.environ["PATH"],
            "DJANGO_SETTINGS_MODULE": "config.settings.development",
            **environment,
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_autocomplete_defaults_to_database_2_of_redis_url():
    assert (
        settings_in_a_fresh_process(REDIS_URL="redis://redis.internal:6379")
        == "redis://redis.internal:6379/2"
    )


def test_autocomplete_redis_url_names_its_own_server():
    url = "redis://autocomplete.internal:6379/5"
    assert (
        settings_in_a_fresh_process(REDIS_URL="redis://redis.internal:6379", AUTOCOMPLETE_REDIS_URL=url)
        == url
    )
