import os
import platform

import django
from django.shortcuts import render


def home_page(request):
    return render(
        request,
        "home/home_page.html",
        {
            "python_version": platform.python_version(),
            "django_version": django.get_version(),
            "settings_module": os.environ.get("DJANGO_SETTINGS_MODULE", ""),
        },
    )
