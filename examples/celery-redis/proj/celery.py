import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")

app = Celery("proj")
# CELERY_* settings; the broker is the app's Redis (REDIS_URL).
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
