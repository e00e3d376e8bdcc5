"""Keep secrets out of text that leaves the process: alerts, state files, JSON output.

Litestream's error lines name buckets and paths, not credentials; but a URL with a password
or a secret that some tool echoes could still reach them, so every text that is written
where others read it goes through :func:`scrub` first. No Django here.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping

from .runner import SECRET_ENV_PREFIX

# Environment variables whose values are credentials, by a word in their name.
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|SAS|JWT|NKEY|SEED|_KEY$|^KEY")
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)([^/\s:@]+):([^/\s@]+)@", re.IGNORECASE)
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


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret and every URL password replaced by ``***``."""
    for value in secrets:
        text = text.replace(value, "***")
    return _USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:***@", text)


def url_for_logs(url: str) -> str:
    """A webhook URL as logs may show it: scheme and host only (the path may be a secret)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/..."
