"""Celery's settings, loaded as an operator would: in fresh processes with a given environment."""

from tests.test_settings import manage

DEVELOPMENT = {"DJANGO_SETTINGS_MODULE": "config.settings.development"}


def test_a_redis_broker_alone_gives_workers_and_web_one_shared_cache():
    code = "from django.conf import settings as s; print(s.CACHES['default']['LOCATION'])"
    env = {**DEVELOPMENT, "CELERY_BROKER_URL": "redis://127.0.0.1:6379/1"}
    result = manage("shell", "--no-imports", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "redis://127.0.0.1:6379/0"


def test_settings_refuse_a_visibility_timeout_shorter_than_a_countdown_and_the_hard_time_limit():
    env = {**DEVELOPMENT, "CELERY_VISIBILITY_TIMEOUT": "400", "CELERY_TASK_TIME_LIMIT": "300"}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "CELERY_VISIBILITY_TIMEOUT (400s) must be longer than" in result.stderr
