"""Base models shared by every app, and the record of tasks that failed for good."""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class TimeStampedModel(models.Model):
    """Adds `created_at` and `updated_at`, maintained by Django on every save."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class DeadLetter(TimeStampedModel):
    """A task that failed for good: after its retry window, on a non-transient error, or because it
    kept killing its worker. Kept with what is needed to run it again (admin: "Run again")."""

    task_name = models.CharField(max_length=255, db_index=True)
    # The failed message's id; unique, so a redelivered failure updates its record instead of adding one.
    task_id = models.CharField(max_length=255, unique=True)
    args = models.JSONField(default=list, encoder=DjangoJSONEncoder)
    kwargs = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    error = models.TextField()
    attempts = models.PositiveIntegerField()
    rerun_at = models.DateTimeField(null=True, blank=True, db_index=True)
    rerun_task_id = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.task_name}[{self.task_id}]"
