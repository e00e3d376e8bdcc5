"""The configuration's value types: the validated setting, a finding, a built configuration.

:mod:`django_litestream.conf` reads ``settings.LITESTREAM`` into a :class:`Settings`;
:mod:`.build` turns it into a :class:`Generated` configuration; every finding about either
is a :class:`Problem`. No Django here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .envref import EnvRef


@dataclass(frozen=True)
class Database:
    """One entry of ``LITESTREAM["dbs"]``, with its alias resolved to an absolute path."""

    path: str
    where: str
    alias: str | None = None
    replica: Mapping[str, Any] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.alias!r} ({self.path})" if self.alias else self.path


@dataclass(frozen=True)
class Settings:
    """The ``LITESTREAM`` setting, validated. Built by :func:`django_litestream.conf.load`."""

    dbs: tuple[Database, ...] = ()
    path_prefix: str = ""
    bin_path: str | None = None
    download_url: str | None = None
    vfs: Mapping[str, Any] = field(default_factory=dict)
    serve: Mapping[str, Any] = field(default_factory=dict)
    health: Mapping[str, Any] = field(default_factory=dict)  # the health endpoint's options
    options: Mapping[str, Any] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    defined: bool = True  # False when settings.LITESTREAM does not exist
    under_test: bool = False  # an entry named Django's in-memory test database, left out
    legacy: Mapping[str, Any] = field(default_factory=dict)  # the older release's keys
    wsgi_application: str | None = None  # Django's WSGI_APPLICATION: what serve runs by default

    def resolve_db(self, name: str) -> str | None:
        """Absolute path for a Django alias, or None when ``name`` is not an alias."""
        return self.aliases.get(name)


@dataclass(frozen=True)
class Problem:
    """A finding about the settings; becomes a system check message or a CLI warning."""

    id: str
    msg: str
    hint: str = ""
    error: bool = False
    where: str = ""  # the key path it is about, when one; two findings there are one

    def __str__(self) -> str:
        return f"{self.msg} {self.hint}".strip()

    def line(self) -> str:
        """How a command prints it: ``Warning: ... (django_litestream.W001)``."""
        return f"{'Error' if self.error else 'Warning'}: {self} ({self.id})"


@dataclass
class Generated:
    """A built configuration: the data, the private environment it needs, and findings."""

    data: dict[str, Any]
    secret_env: dict[str, str]
    problems: list[Problem]
    # The literal secrets by variable name; ``secret_env`` holds them YAML-quoted, because
    # Litestream substitutes variables into the YAML text before parsing it.
    secret_values: dict[str, str] = field(default_factory=dict)

    def render(self, *, expand: Mapping[str, str] | None = None) -> str:
        """YAML text. With ``expand`` (for ``-no-expand-env``) references become values."""
        if expand is not None:
            expand = {**expand, **self.secret_values}
        import yaml  # not at the top: serve's start imports this module before its server boots

        return yaml.safe_dump(_materialize(self.data, expand), sort_keys=False)


def _materialize(value: Any, expand: Mapping[str, str] | None) -> Any:
    if isinstance(value, EnvRef):
        return f"${value.name}" if expand is None else expand.get(value.name, "")
    if isinstance(value, Mapping):
        return {k: _materialize(v, expand) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_materialize(v, expand) for v in value]
    return value
