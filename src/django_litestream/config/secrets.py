"""Secrets: how they reach Litestream, and how they are kept out of text others read.

A secret written literally in the settings reaches Litestream as a private variable of
:data:`SECRET_ENV_PREFIX` (its configuration refers to it; the server and the pre-serve
commands never see it). Every text written where others read it (alerts, state files,
JSON output, messages naming a replica URL) goes through :func:`scrub` or
:func:`mask_url`: the one place where credentials are blanked. No Django here.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping

SECRET_ENV_PREFIX = "DJANGO_LITESTREAM_SECRET_"
# Environment variables whose values are credentials, by a word in their name.
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|SAS|JWT|NKEY|SEED|_KEY$|^KEY")
# scheme://user:password@ : the password runs to the last '@' before the path.
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)([^/\s:@]+):([^/\s]+)@", re.IGNORECASE)
MIN_SECRET = 4  # shorter values would blank out ordinary words


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """The values of ``environ`` that are credentials, longest first."""
    found = {
        value
        for name, value in environ.items()
        if len(value) >= MIN_SECRET
        and (name.startswith(SECRET_ENV_PREFIX) or _SECRET_NAME.search(name.upper()))
    }
    return sorted(found, key=len, reverse=True)


def mask_url(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:***@", text)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret and every URL password replaced by ``***``.

    A secret is replaced where it stands as a value (``key=SECRET``, ``u:SECRET@h``,
    ``"SECRET"``), never inside a longer word: a short secret such as ``test`` must not
    turn "Litestream" into "Li***ream" (which would also show where its letters occur).
    """
    for value in secrets:  # longest first (secret_values), so a longer one wins
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", "***", text)
    return mask_url(text)


def url_for_logs(url: str) -> str:
    """A webhook URL as logs may show it: scheme and host only (the path may be a secret)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/..."
