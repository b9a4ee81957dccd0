"""Settings of the Celery + Redis example.

Conductor's local_settings.py imports these and sets DEBUG, SECRET_KEY,
ALLOWED_HOSTS and DATABASES; `redis:create` gives every process REDIS_URL,
which is the Celery broker here.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "django-insecure-celery-example-dev-key-not-for-production"
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "jobs",
]

MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "proj.urls"
TEMPLATES = []
WSGI_APPLICATION = "proj.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
    }
}

USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CELERY_BROKER_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
# beat keeps its schedule in the app's HOME, not in the release.
CELERY_BEAT_SCHEDULE_FILENAME = os.path.join(os.environ.get("HOME", str(BASE_DIR)), "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "tick": {"task": "jobs.tasks.record", "schedule": 2.0, "args": ("beat",)},
}
