"""serve's tests: a project replicating to a file replica, and nothing left running."""

from __future__ import annotations

import pytest

from tests.support.project import Project
from tests.support.serving import no_serve_left_behind as no_serve_left_behind  # autouse


@pytest.fixture
def served(project: Project, file_replica: dict[str, str]) -> Project:
    project.configure({"dbs": [{"path": "default", "replica": file_replica}]})
    return project
