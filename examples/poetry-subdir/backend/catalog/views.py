import os
import platform

import django
from django.conf import settings
from django.shortcuts import render


def index(request):
    return render(
        request,
        "catalog/index.html",
        {
            "python_version": platform.python_version(),
            "django_version": django.get_version(),
            "settings_module": os.environ.get("DJANGO_SETTINGS_MODULE", ""),
            "engine": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        },
    )
