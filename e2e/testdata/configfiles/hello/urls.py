from django.urls import path

from greetings import configviews, views

urlpatterns = [
    path("", views.index, name="index"),
    path("health", views.health, name="health"),
    path("secret", configviews.secret),
    path("upload", configviews.upload),
]
