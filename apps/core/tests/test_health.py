import time

import pytest
from django.urls import reverse

from tests.support.net import closed_port, silent_server


def _redis_cache(location: str) -> dict:
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": location,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5, "IGNORE_EXCEPTIONS": True},
        }
    }


@pytest.mark.django_db
def test_readyz_is_200_and_names_every_check_when_services_are_up(client):
    response = client.get(reverse("readyz"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "broker", "beat", "broker_durability"}
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.django_db
def test_readyz_is_503_naming_the_cache_when_redis_is_on_a_closed_port(client, settings):
    settings.CACHES = _redis_cache(f"redis://127.0.0.1:{closed_port()}/0")
    started = time.monotonic()
    response = client.get(reverse("readyz"))
    assert time.monotonic() - started < 2
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["cache"]["ok"] is False
    assert "Connection" in checks["cache"]["detail"]
    assert checks["database"]["ok"] is True


@pytest.mark.django_db
def test_readyz_answers_503_within_two_seconds_when_redis_hangs(client, settings):
    settings.HEALTH_CHECK_TIMEOUT = 1.0
    with silent_server() as port:
        settings.CACHES = _redis_cache(f"redis://127.0.0.1:{port}/0")
        # The socket timeout is shorter than the deadline here; make the hang outlast both.
        settings.CACHES["default"]["OPTIONS"]["SOCKET_TIMEOUT"] = 30
        started = time.monotonic()
        response = client.get(reverse("readyz"))
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["checks"]["cache"]["detail"] == "no answer within 1s"
    assert elapsed < 2


@pytest.mark.django_db
def test_readyz_reports_an_unreachable_broker(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/1"
    response = client.get(reverse("readyz"))
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False


@pytest.mark.django_db
def test_readyz_answers_head_as_load_balancers_send_it(client):
    response = client.head(reverse("readyz"))
    assert response.status_code == 200
    assert response.content == b""
