from django.conf import settings
from django.contrib import admin
from django.urls import path

from bakery.views import home

urlpatterns = [
    path("", home, name="home"),
    path(settings.ADMIN_URL, admin.site.urls),
]
