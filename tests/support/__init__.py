"""What the tests and the benchmarks share: projects, storage servers, processes, serve runs.

``project`` makes a throwaway Django project driven through real ``manage.py`` processes;
``storage`` starts real storage servers on 127.0.0.1 (``fixtures_storage`` as fixtures);
``procs`` reads process trees; ``serving`` runs ``serve`` around the stand-in server;
``durability`` writes back to back and counts acknowledged ids; ``operations`` serves a
project for the operations commands; ``vfs_site`` is the read-replica project. ``bin/``
holds stand-ins for failures the real programs cannot be made to show, named as such.
"""

from __future__ import annotations

from pathlib import Path

BIN = Path(__file__).resolve().parent / "bin"
# A server that records the signals it receives (the stand-in named in docs/serve.rst).
SIGSERVER = str(BIN / "sigserver.py")
