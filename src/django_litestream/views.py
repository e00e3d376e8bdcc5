"""The health endpoint (see ``health.py`` for the verdict and docs/operations.rst).

Include it with ``path("litestream/", include("django_litestream.urls"))``: ``GET
/litestream/health/`` answers 200 while every configured database replicates within
``LITESTREAM["health"]["max_lag_seconds"]``, else 503, with the same small JSON body.
Details (paths, replica locations, error text) go to staff users and to requests that
carry the configured token as ``Authorization: Bearer TOKEN``.
"""

from __future__ import annotations

import hmac
import logging
import time

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.cache import never_cache

from . import conf
from .errors import ConfigurationError
from .ops import health

log = logging.getLogger("django_litestream.health")


def _has_token(request: HttpRequest, token: str) -> bool:
    if not token:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def _is_staff(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and getattr(user, "is_active", False) and user.is_staff)


@never_cache
def health_view(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    try:
        settings = conf.load()
        options = health.parse(settings.health)
    except ConfigurationError as exc:
        log.error("The health endpoint cannot run: %s", exc)
        return JsonResponse(
            {
                "status": "unhealthy",
                "reason": "the LITESTREAM setting is invalid; run 'python manage.py check'",
                "databases": [],
            },
            status=503,
        )
    report = health.evaluate(settings.dbs, options, time.time())
    detail = _has_token(request, options.token) or _is_staff(request)
    status = 200 if report.healthy else 503
    return JsonResponse(report.as_json(detail=detail), status=status)
