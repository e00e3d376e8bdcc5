"""``path("litestream/", include("django_litestream.urls"))``: the health endpoint."""

from __future__ import annotations

from django.urls import path

from .views import health_view

app_name = "litestream"
urlpatterns = [path("health/", health_view, name="health")]
