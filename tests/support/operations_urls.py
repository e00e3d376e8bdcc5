"""A URLconf that routes the health endpoint, for the system checks' tests."""

from django.urls import include, path

urlpatterns = [path("litestream/", include("django_litestream.urls"))]
