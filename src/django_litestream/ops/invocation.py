"""What an operations command needs to run Litestream: the binary, a private configuration.

``status`` and ``verify`` (and the pass-through commands) work on the databases of
``LITESTREAM['dbs']`` with a configuration file only they can read, removed when the
command ends. No Django here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..config.generate import generate, print_stderr
from ..config.types import Database, Generated, Settings
from ..errors import ConfigurationError, UsageError
from ..litestream import binary, process


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What a command of ours needs to run Litestream: the binary, a private configuration
    (removed when the command ends) and the environment with the secrets it refers to."""

    exe: str
    config_path: str
    env: dict[str, str]
    generated: Generated
    private_dir: str


@contextlib.contextmanager
def prepared(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    *,
    warn: Callable[[str], None] = print_stderr,
) -> Iterator[Prepared]:
    environ = dict(os.environ if environ is None else environ)
    exe = binary.resolve(settings.bin_path, download_url=settings.download_url, progress=warn)
    process.sweep_dead_private_dirs()
    with process.private_dir() as private:
        generated = generate(settings, environ, strict=True, warn=warn, exe=exe)
        path = process.write_private(os.path.join(private, "litestream.yml"), generated.render())
        yield Prepared(exe, path, {**environ, **generated.secret_env}, generated, private)


def entries(settings: Settings, generated: Generated) -> dict[str, dict[str, Any]]:
    """Each database's entry of the generated configuration, by the database's path."""
    return {db.path: e for db, e in zip(settings.dbs, generated.data["dbs"], strict=True)}


def selected_dbs(settings: Settings, names: Sequence[str], command: str) -> list[Database]:
    """The configured databases ``names`` (aliases or paths) name; all of them when none.

    A ``dir`` entry (a directory of databases) is never one: Litestream finds those.
    """
    dbs = [db for db in settings.dbs if "dir" not in db.options]
    if not names:
        if not dbs:
            raise ConfigurationError(
                f"'{command}' has no database to look at: LITESTREAM['dbs'] lists none. "
                "Add one, e.g. LITESTREAM = {'dbs': [{'path': 'default'}]}."
            )
        return dbs
    by_path = {db.path: db for db in dbs}
    chosen: list[Database] = []
    for name in names:
        path = settings.aliases.get(name) or os.path.abspath(os.path.expanduser(name))
        db = by_path.get(path)
        if db is None:
            known = ", ".join(db.alias or db.path for db in dbs) or "none"
            raise UsageError(
                f"{command}: {name!r} is not a database in LITESTREAM['dbs'] (configured: "
                f"{known}). Give a DATABASES alias or a path from that list."
            )
        if db not in chosen:
            chosen.append(db)
    return chosen
