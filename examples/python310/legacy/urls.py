from django.urls import path

from legacy import views

urlpatterns = [
    path('', views.index),
]
