"""Django settings for the hello example project.

These settings work standalone for local development (sqlite in BASE_DIR,
DEBUG on). When deployed by Conductor, the server generates a
``local_settings.py`` at the repo root that does ``from hello.settings import *``
and overrides DEBUG, SECRET_KEY, ALLOWED_HOSTS, DATABASES, STATIC_ROOT and
MEDIA_ROOT; it points DJANGO_SETTINGS_MODULE at that module.
"""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# Development-only key; Conductor overrides it in local_settings.
SECRET_KEY = "django-insecure-hello-example-dev-key-not-for-production"

DEBUG = True

ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "greetings",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "hello.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
            ],
        },
    },
]

WSGI_APPLICATION = "hello.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

MEDIA_URL = "/media/"
MEDIA_ROOT = BASE_DIR / "media"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
