"""The Python x Django test matrix: ``nox -s tests`` runs every combination found here.

    nox -l                                    # list the sessions
    nox -s "tests(3.10-django4.2)"            # the oldest combination
    nox -s "tests(3.13-django6.0)" -- -x -q   # arguments after -- go to pytest

Interpreters come from PATH; pyenv-installed versions are found even when they are not
activated. A missing interpreter skips its sessions (set CI=true to make it an error).
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
# Django series -> (pip requirement, the Pythons that series supports).
DJANGOS = {
    "4.2": ("Django>=4.2,<5.0", ("3.10", "3.11", "3.12")),  # 4.2 LTS stops at 3.12
    "5.2": ("Django>=5.2,<6.0", ("3.10", "3.11", "3.12", "3.13")),
    "6.0": ("Django>=6.0,<7.0", ("3.12", "3.13")),  # 6.x needs Python 3.12+
}
MATRIX = [
    (python, django)
    for python in PYTHONS
    for django, (_, pythons) in DJANGOS.items()
    if python in pythons
]

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = bool(os.environ.get("CI"))


def _pyenv_interpreters() -> None:
    """Put each pyenv version's bin/ on PATH, so that "python3.10" finds it unactivated."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if not root.is_dir():
        return
    found = []
    for python in PYTHONS:
        patches = [p for p in root.glob(f"{python}.*") if p.name.rsplit(".", 1)[-1].isdigit()]
        for version in sorted(patches, key=lambda p: int(p.name.rsplit(".", 1)[-1]), reverse=True):
            if (version / "bin" / f"python{python}").exists():
                found.append(str(version / "bin"))
                break
    os.environ["PATH"] = os.pathsep.join([*found, os.environ.get("PATH", "")])


_pyenv_interpreters()


@nox.session
@nox.parametrize(("python", "django"), MATRIX, ids=[f"{p}-django{d}" for p, d in MATRIX])
def tests(session: nox.Session, django: str) -> None:
    """Run the test suite on one Python x Django combination."""
    session.install("-e", ".[test]", DJANGOS[django][0])
    session.run("python", "-m", "django", "--version")
    session.run("python", "-m", "pytest", *session.posargs)
