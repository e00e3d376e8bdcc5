from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.project import Project, make_project

pytest_plugins = [
    "tests.support.fixtures_storage",
    "tests.support.vfs_site",
    "tests.support.operations",
]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A Django project in tmp_path whose settings each test writes with .configure()."""
    root = tmp_path / "proj"
    root.mkdir()
    return make_project(root)


@pytest.fixture
def file_replica(tmp_path: Path) -> dict[str, str]:
    return {"type": "file", "path": str(tmp_path / "replica")}
