import os
import platform

import django
from django.shortcuts import render
from django.urls import path


def home(request):
    return render(
        request,
        "home.html",
        {
            "python_version": platform.python_version(),
            "django_version": django.get_version(),
            "settings_module": os.environ.get("DJANGO_SETTINGS_MODULE", ""),
        },
    )


urlpatterns = [path("", home)]
