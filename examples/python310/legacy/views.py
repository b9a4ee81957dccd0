import os
import platform

import django
from django.shortcuts import render


def index(request):
    return render(request, 'index.html', {
        'python_version': platform.python_version(),
        'django_version': django.get_version(),
        'settings_module': os.environ.get('DJANGO_SETTINGS_MODULE', ''),
    })
