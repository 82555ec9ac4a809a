from django.db import migrations, models
from django.db.models import F


def claim_the_ones_already_sent(apps, schema_editor):
    # Every email already sent was, in effect, claimed: the sweep must not send it again.
    Article = apps.get_model("articles", "Article")
    Article.objects.filter(author_notified_at__isnull=False).update(
        author_notification_claimed_at=F("author_notified_at")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("articles", "0002_article_updated_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="article",
            name="author_notification_claimed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(claim_the_ones_already_sent, migrations.RunPython.noop),
    ]
