from django.db import models


class Greeting(models.Model):
    """One row is created per GET of the index page, proving the DB works."""

    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"Greeting {self.pk} at {self.created_at:%Y-%m-%d %H:%M:%S}"
