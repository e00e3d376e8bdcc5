"""Litestream's ``-exec`` child: a placeholder whose exit tells Litestream to finish.

``litestream replicate -exec CMD`` runs until its child exits, then closes every database
the way it always does (one more sync of the WAL, then the replica, retried for
``shutdown-sync-timeout``) and exits. serve starts the server itself, so the child only
has to exit when serve says so, and never before:

* it reads a FIFO in serve's private directory that the supervisor holds open (the only
  writer); the supervisor closing it (or dying: the kernel closes it) is end-of-file, and
  the child exits 0 (also when the FIFO is already gone as it starts);
* it ignores every signal a group or cgroup could send it with the rest of serve (TERM,
  INT, QUIT, HUP, USR1, USR2, TTIN, TTOU): Litestream forwards INT and TERM to its child and
  waits for it, so the stop stays the supervisor's to order (server first, then Litestream).

It is ``sh`` (about 2 MB) when there is one, else this interpreter without ``site``, and
it runs with an empty environment (``env -i``): it needs none, and Litestream's own holds the
storage's credentials (it even copies ``LITESTREAM_*`` keys into ``AWS_*``), which a child
would otherwise inherit for any local user's debugger to read.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys

IGNORED = "HUP INT QUIT TERM USR1 USR2 TTIN TTOU"
SHELL = f'trap "" {IGNORED}; {{ read _ < "$0"; }} 2>/dev/null; exit 0'
PYTHON = (
    "import signal,sys\n"
    "for s in (1,2,3,15,10,12,21,22): signal.signal(s,signal.SIG_IGN)\n"
    "try: open(sys.argv[1],'rb').read()\n"
    "except OSError: pass\n"
)


class Sleeper:
    """The FIFO and the argv of Litestream's ``-exec`` child."""

    def __init__(self, runtime_dir: str) -> None:
        self.path = os.path.join(runtime_dir, "exec.fifo")
        os.mkfifo(self.path, 0o600)
        # Read-write: opening never blocks, and the child's open for reading finds a writer.
        # Not inherited by any child (Python's default), so this is the only writer.
        self.fd: int | None = os.open(self.path, os.O_RDWR)

    def argv(self) -> list[str]:
        env = shutil.which("env")
        empty = [env, "-i"] if env else []  # 'env' execs the command: nothing stays between
        shell = shutil.which("sh")
        if shell:
            return [*empty, shell, "-c", SHELL, self.path]
        return [*empty, sys.executable, "-I", "-S", "-c", PYTHON, self.path]

    def release(self) -> None:
        """Let the child exit: Litestream then runs its final sync and exits.

        The FIFO goes first, then the only writer: a child that had not opened it yet (a
        stop right after the start) finds no FIFO and exits, instead of waiting forever
        for a writer."""
        if self.fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            os.close(self.fd)
            self.fd = None
