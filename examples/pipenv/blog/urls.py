from django.urls import path

from posts.views import latest

urlpatterns = [path("", latest)]
