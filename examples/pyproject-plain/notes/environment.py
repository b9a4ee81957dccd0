"""One place that sets up the environment for manage.py and the servers."""

import os


def configure():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notes.config")
