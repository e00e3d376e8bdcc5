"""Build the configuration for a command and report every finding: the one way in.

Every command that hands a configuration to Litestream (``serve``, the pass-through
commands, ``status``, ``verify``) and ``config`` itself build it here, so that each says
the same findings in the same words: warnings printed, the first error raised. No Django.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

from ..errors import ConfigurationError
from . import findings, locations
from .build import build
from .types import Generated, Settings


def print_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def generate(
    settings: Settings,
    environ: Mapping[str, str],
    *,
    strict: bool,
    warn: Callable[[str], None] = print_stderr,
    exe: str | None = None,
) -> Generated:
    """Build the config and report every finding: warnings printed, errors raised.

    ``strict``: the configuration goes to Litestream, so a missing bucket is the error E006
    and the first error is raised (the others printed). Otherwise (``config``) errors are
    printed and :class:`ConfigurationError` is raised only after the caller's output.
    ``exe``: the binary that judges the configuration too.
    """
    generated = build(settings, environ)
    problems = findings.errors_first(
        [
            *findings.collect(
                settings, generated, environ, bucket_required=strict, exe=exe, stand_ins=not strict
            ),
            *locations.collisions(settings.dbs, generated.data["dbs"], environ),
        ]
    )
    errors = [p for p in problems if p.error]
    for problem in problems:
        if problem.error and strict and problem is errors[0]:
            continue
        warn(problem.line())
    if strict and errors:
        raise ConfigurationError(f"{errors[0]} ({errors[0].id})")
    generated.problems = problems
    return generated
