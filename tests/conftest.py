from __future__ import annotations

from pathlib import Path

import pytest

from tests.project import Project, make_project

pytest_plugins = ["tests.fixtures_storage", "tests.vfs_site", "tests.ops"]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A Django project in tmp_path whose settings each test writes with .configure()."""
    root = tmp_path / "proj"
    root.mkdir()
    return make_project(root)


@pytest.fixture
def file_replica(tmp_path: Path) -> dict[str, str]:
    return {"type": "file", "path": str(tmp_path / "replica")}
