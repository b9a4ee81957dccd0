from django.urls import path

from greetings import dbinfo, views

urlpatterns = [
    path("", views.index, name="index"),
    path("health", views.health, name="health"),
    path("dbs/", dbinfo.dbs, name="dbs"),
]
