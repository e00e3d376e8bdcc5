"""Everything known about a setting, from every source, in one list; no Django here.

Used alike by the system checks and by the commands, so that ``check`` never passes a
setting that Litestream then refuses at start: key typos (noted by :mod:`.build`), the
environment (:func:`environment_problems`), values Litestream misreads (:mod:`.values`),
and the binary's own verdict on the generated configuration (:mod:`.verdict`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import values
from .build import BUCKET_VARS, auto_bucket_given, env_var
from .types import Generated, Problem, Settings


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
        *environment_problems(settings, environ, bucket_required=bucket_required),
        *values.settings_problems(settings),
        *values.unset_references(settings, generated, environ),
    ]
    if exe and (settings.dbs or settings.options):
        from . import verdict

        ours = {p.where for p in found if p.error and p.where}
        if stand_ins:
            extra = verdict.placeholders(generated, environ)
        elif any(p.id == BUCKET_REQUIRED for p in found):
            extra = {env_var(BUCKET_VARS, environ): "placeholder"}
        else:
            extra = {}
        for problem in verdict.refusals(exe, settings, generated, environ, stand_ins=extra):
            if not (problem.where and problem.where in ours):
                found.append(problem)
    return found


def errors_first(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: not p.error)


def _is_s3(replica: Mapping[str, Any]) -> bool:
    return replica.get("type") == "s3" or str(replica.get("url", "")).startswith("s3://")


def _loopback(addr: str) -> bool:
    host = addr.rsplit(":", 1)[0].strip("[]") if ":" in addr else addr
    return host == "localhost" or host.startswith("127.") or host == "::1"


BUCKET_REQUIRED = "django_litestream.E006"


def bucket_problem(settings: Settings, environ: Mapping[str, str], *, required: bool) -> Problem:
    """No bucket variable for the auto-generated replica: W009, or E006 where it is needed."""
    auto = [db for db in settings.dbs if db.replica is None]
    blank = [name for name in BUCKET_VARS if name in environ and not environ[name].strip()]
    state = f"${blank[0]} is blank" if blank else "neither is set"
    msg = (
        f"{auto[0].where} has no 'replica', so it replicates to the S3 bucket named by "
        f"$LITESTREAM_REPLICA_BUCKET (or $AWS_BUCKET), and {state}."
    )
    hint = (
        "Hint: export LITESTREAM_REPLICA_BUCKET=your-bucket, or give the database a "
        "'replica' (for example {'type': 'file', 'path': '/var/backups/db'})."
    )
    if required:
        return Problem(BUCKET_REQUIRED, msg, hint, error=True)
    return Problem(
        "django_litestream.W009",
        msg + " That is fine for development and tests; the commands that hand this "
        "configuration to Litestream refuse to start (django_litestream.E006, also under "
        "'check --deploy').",
        hint,
    )


def environment_problems(
    settings: Settings, environ: Mapping[str, str], *, bucket_required: bool = False
) -> list[Problem]:
    """Findings that depend on the environment rather than on the settings' shape.

    A missing bucket variable is the warning W009 unless ``bucket_required`` (a command that
    hands the configuration to Litestream, or ``check --deploy``): then it is E006.
    """
    found = []
    auto = [db for db in settings.dbs if db.replica is None]
    if auto and not auto_bucket_given(settings, environ):
        found.append(bucket_problem(settings, environ, required=bucket_required))
    if environ.get("AWS_CA_BUNDLE") and (
        auto or any(db.replica is not None and _is_s3(db.replica) for db in settings.dbs)
    ):
        found.append(
            Problem(
                "django_litestream.W004",
                "AWS_CA_BUNDLE is set and an S3 replica is configured; Litestream 0.5 then "
                "fails to start ('unable to add custom RootCAs HTTPClient').",
                "Hint: unset AWS_CA_BUNDLE for the Litestream process, for example "
                "'env -u AWS_CA_BUNDLE python manage.py litestream ...'; add the CA to the "
                "system trust store instead if your endpoint needs it.",
            )
        )
    for key in ("addr", "mcp-addr"):
        addr = settings.options.get(key)
        # (without a port it is no address at all: the binary refuses it, E009)
        if isinstance(addr, str) and ":" in addr and not _loopback(addr):
            found.append(
                Problem(
                    "django_litestream.W005",
                    f"LITESTREAM['{key}'] is {addr!r}, which listens beyond this machine. "
                    + (
                        "Its MCP tools are unauthenticated and can restore and reset files."
                        if key == "mcp-addr"
                        else "It serves metrics and debug endpoints without authentication."
                    ),
                    f"Hint: bind it to loopback, e.g. '127.0.0.1:{addr.rsplit(':', 1)[-1]}'.",
                )
            )
    return found
