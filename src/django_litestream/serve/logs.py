"""One log format for every process of ``serve``, so one alert rule matches them all."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s [django-litestream] %(levelname)s %(message)s"


def configure() -> None:
    """Log INFO and above to stderr (stdout stays the server's); keep httpx quiet."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=FORMAT)
