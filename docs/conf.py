"""Sphinx configuration for django-litestream. No network: no intersphinx, no remote themes."""

from __future__ import annotations

project = "django-litestream"
author = "django-litestream developers"
copyright = "django-litestream developers"

extensions: list[str] = []
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"
html_theme = "alabaster"
html_static_path: list[str] = []
highlight_language = "python"
# Links to litestream.io and PyPI are written out; nothing is fetched at build time.
linkcheck_ignore = [r".*"]
