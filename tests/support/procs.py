"""Race-free looks at a process tree.

A process listed by ``children()`` can exit (and be reaped) before its name or command line
is read; serve reaps orphans on purpose, so that happens in these tests. Every read here
takes a snapshot and drops processes that are gone instead of raising.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Proc:
    process: psutil.Process
    name: str
    argv: tuple[str, ...]
    zombie: bool

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def cmdline(self) -> str:
        return " ".join(self.argv)


def snapshot(process: psutil.Process) -> Proc | None:
    """Name, argv and zombie state of ``process``, or None once it no longer exists."""
    try:
        with process.oneshot():
            name = process.name()
            status = process.status()
            if status == psutil.STATUS_ZOMBIE:
                return Proc(process, name, (), True)
            return Proc(process, name, tuple(process.cmdline()), False)
    except psutil.ZombieProcess:
        return Proc(process, "", (), True)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def children(pid: int, *, recursive: bool = True) -> list[Proc]:
    """The processes under ``pid`` that still exist (zombies included, flagged)."""
    try:
        found = psutil.Process(pid).children(recursive=recursive)
    except psutil.NoSuchProcess:
        return []
    return [p for p in map(snapshot, found) if p is not None]


def alive(process: psutil.Process | Proc) -> bool:
    """True while ``process`` runs (a zombie has ended)."""
    if isinstance(process, Proc):
        process = process.process
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
