from typing import Any

from django.apps import AppConfig


class ArticlesConfig(AppConfig):
    name = "apps.articles"
    label = "articles"
    verbose_name = "Articles"
    menu = ("Articles", "articles:list")

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from apps.users.models import User

        post_save.connect(_user_saved, sender=User, dispatch_uid="articles.author_renamed")


def _user_saved(sender: type, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any) -> None:
    # A new user has no articles; a save of other fields (last_login on every sign-in) shows nowhere.
    if created or (update_fields is not None and not {"first_name", "last_name"} & set(update_fields)):
        return
    from apps.articles import services

    services.author_renamed(author_id=instance.pk)
