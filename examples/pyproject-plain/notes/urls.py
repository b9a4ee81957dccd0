import os
import platform

import django
from django.http import HttpResponse
from django.urls import path


def home(request):
    return HttpResponse(
        "<!doctype html><title>Notes</title>"
        "<h1>Notes: pyproject.toml without a lock file</h1>"
        f"<p>python: {platform.python_version()}</p>"
        f"<p>django: {django.get_version()}</p>"
        f"<p>settings: {os.environ.get('DJANGO_SETTINGS_MODULE', '')}</p>"
    )


urlpatterns = [path("", home)]
