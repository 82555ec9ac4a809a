"""The first hour with the example app: its pages answer and its demo data says what to do next."""

import pytest
from django.core.management import call_command
from django.urls import reverse


@pytest.mark.django_db
def test_head_on_the_article_list_answers_200(client):
    assert client.head(reverse("articles:list")).status_code == 200


@pytest.mark.django_db
def test_seed_demo_says_autocomplete_needs_nothing_without_redis(settings, capsys):
    settings.AUTOCOMPLETE_REDIS_URL = ""
    call_command("seed_demo", articles=3, users=1)
    output = capsys.readouterr().out
    assert "Autocomplete answers from the database" in output
    assert "Run `manage.py rebuild_autocomplete`" not in output


@pytest.mark.django_db
def test_seed_demo_says_the_autocomplete_index_catches_up_by_itself_with_redis(settings, capsys):
    assert settings.AUTOCOMPLETE_REDIS_URL
    call_command("seed_demo", articles=3, users=1)
    assert "Autocomplete catches up by itself" in capsys.readouterr().out
