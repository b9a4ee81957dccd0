from django.db import models


class Event(models.Model):
    """One task run: `web:<tag>` for a task a request enqueued, `beat` for beat's."""

    kind = models.CharField(max_length=100)
    at = models.DateTimeField(auto_now_add=True)
