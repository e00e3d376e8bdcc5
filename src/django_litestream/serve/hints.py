"""The next step to suggest when a sync or a restore fails, read from the error's text.

A failure is not always the replica's: a full disk or a permission on this machine looks
the same from the outside (a sync that is never confirmed), and "check the storage and
its credentials" would send the user to the wrong place.
"""

from __future__ import annotations

import os
import re

# OS error texts (Go's and Python's) and SQLite's for a full file system.
_DISK_FULL = ("no space left on device", "disk full", "database or disk is full")
_NOT_WRITABLE = ("permission denied", "read-only file system")
_PATH = re.compile(r"(?<![\w:/])(/[^\s:\"'()]+)")


def _where(reason: str) -> str:
    """The directory of the first absolute path in ``reason``, or ''."""
    match = _PATH.search(reason)
    return os.path.dirname(match.group(1)) if match else ""


def is_disk_full(reason: str) -> bool:
    """True when ``reason`` says a file system is full (retrying soon will not help)."""
    text = reason.lower()
    return any(s in text for s in _DISK_FULL)


def storage_hint(reason: str) -> str:
    """What to do about ``reason``, as a clause that completes a sentence."""
    text = reason.lower()
    where = _where(reason)
    at = f" ({where})" if where else ""
    if is_disk_full(reason):
        return (
            f"a disk of this machine is full{at}: free space on it (Litestream resumes by "
            "itself once there is room)"
        )
    if any(s in text for s in _NOT_WRITABLE):
        return f"this user cannot write{at}: check the directory's permissions and mount"
    return "check the storage and its credentials"
