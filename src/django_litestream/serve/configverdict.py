"""The binary's verdict on serve's configuration, taken while the supervisor starts.

Every command asks the Litestream binary whether it accepts the generated configuration
(``litestream databases -json``, ``verdict.py``): about 30 ms of a Go process, which serve
used to wait for before its ``exec``. Now the Django side forks a child that asks it (the
child has the settings and the generated configuration in memory, so nothing secret is
written anywhere) and ``exec``\\ s the supervisor at once; the supervisor, still the
child's parent after the ``exec``, waits for it before its first step and says what the
binary refused exactly as the Django side would have (same lines, same exit code 78).
The result travels in a 0600 file in serve's private directory: messages, never values.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config.types import Generated, Settings

RESULT = "config-check.json"


def start(
    exe: str, settings: Settings, generated: Generated, environ: Mapping[str, str], runtime: str
) -> int:
    """Fork the child that asks ``exe``; its PID (the caller ``exec``\\ s next)."""
    path = os.path.join(runtime, RESULT)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        from ..config import verdict

        problems = verdict.refusals(exe, settings, generated, environ, stand_ins={})
        errors = [p for p in problems if p.error]
        lines = [
            p.line()
            for p in sorted(problems, key=lambda p: not p.error)
            if not (errors and p is errors[0])
        ]
        found = {"lines": lines, "error": f"{errors[0]} ({errors[0].id})" if errors else ""}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(found, handle)
        code = 0
    finally:
        os._exit(code)  # never the parent's exit handlers, nor its buffered output


def wait(pid: int, runtime: str) -> tuple[list[str], str]:
    """(lines to print, the error that stops serve or "") once the child is done."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        status = 1
    try:
        with open(os.path.join(runtime, RESULT)) as handle:
            found = json.load(handle)
        return list(found["lines"]), str(found["error"])
    except (OSError, ValueError, KeyError, TypeError):
        return [], (
            f"The check of the generated configuration by the Litestream binary failed "
            f"unexpectedly (status {status}); this is a bug, please report it."
        )
