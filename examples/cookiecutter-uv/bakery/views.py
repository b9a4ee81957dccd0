import os
import platform

import django
from django.conf import settings
from django.shortcuts import render


def home(request):
    return render(
        request,
        "pages/home.html",
        {
            "python_version": platform.python_version(),
            "django_version": django.get_version(),
            "settings_module": os.environ.get("DJANGO_SETTINGS_MODULE", ""),
            "broker": settings.CELERY_BROKER_URL.split("://", 1)[0],
        },
    )
