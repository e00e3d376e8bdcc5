"""Everything known about a setting, from every source, in one list; no Django here.

Used alike by the system checks and by the commands, so that ``check`` never passes a
setting that Litestream then refuses at start: key typos (:mod:`config`), the environment
(:func:`config.environment_problems`), values Litestream misreads (:mod:`values`), and the
binary's own verdict on the generated configuration (:mod:`verdict`).
"""

from __future__ import annotations

from collections.abc import Mapping

from . import config, values
from .config import Generated, Problem, Settings


def collect(
    settings: Settings,
    generated: Generated,
    environ: Mapping[str, str],
    *,
    bucket_required: bool,
    exe: str | None = None,
    stand_ins: bool = False,
) -> list[Problem]:
    """All findings. ``exe``: ask that binary too (``stand_ins`` for unset variables).

    The binary is asked only when there is something for it to judge; a complaint of its
    about a key that a finding of ours already names as an error is left out (one message
    per mistake).
    """
    found = [
        *generated.problems,
        *config.environment_problems(settings, environ, bucket_required=bucket_required),
        *values.settings_problems(settings),
        *values.unset_references(settings, generated, environ),
    ]
    if exe and (settings.dbs or settings.options):
        from . import verdict  # only when the binary judges: serve's start does not wait for it

        ours = {p.where for p in found if p.error and p.where}
        if stand_ins:
            extra = verdict.placeholders(generated, environ)
        elif any(p.id == config.BUCKET_REQUIRED for p in found):
            extra = {config.env_var(config.BUCKET_VARS, environ): "placeholder"}
        else:
            extra = {}
        for problem in verdict.refusals(exe, settings, generated, environ, stand_ins=extra):
            if not (problem.where and problem.where in ours):
                found.append(problem)
    return found


def errors_first(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: not p.error)
