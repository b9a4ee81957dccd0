import os
import platform

import django
from django.contrib import admin
from django.http import HttpResponse
from django.urls import path


def home(request):
    return HttpResponse(
        "<!doctype html><title>Plain</title>"
        "<h1>Plain Django, no gunicorn in its requirements</h1>"
        f"<p>python: {platform.python_version()}</p>"
        f"<p>django: {django.get_version()}</p>"
        f"<p>settings: {os.environ.get('DJANGO_SETTINGS_MODULE', '')}</p>"
    )


urlpatterns = [
    path("admin/", admin.site.urls),
    path("", home),
]
