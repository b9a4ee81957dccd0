import json
import os
import platform

import django
from django.conf import settings
from django.http import HttpResponseServerError
from django.shortcuts import render
from django.urls import path


def home(request):
    try:
        info = json.loads((settings.FRONTEND_BUILD_DIR / "build-info.json").read_text())
    except FileNotFoundError:
        return HttpResponseServerError("frontend assets were not built: run npm ci && npm run build\n")
    return render(
        request,
        "home.html",
        {
            "built_by": info["builtBy"],
            "css_bytes": info["bytes"],
            "python_version": platform.python_version(),
            "django_version": django.get_version(),
            "settings_module": os.environ.get("DJANGO_SETTINGS_MODULE", ""),
        },
    )


urlpatterns = [path("", home)]
