"""A stop signal from serve's first line on: recorded, carried over the ``exec``, then obeyed.

Between serve's start (``launch.run``; under ``python -m django_litestream serve``, its first
line) and the supervisor's own handlers, serve already starts children (a restore, an early
gunicorn, the binary's check of the configuration) and the supervisor's interpreter starts
after an ``exec``. A SIGTERM there would kill serve and leave those children running; a
Ctrl-C would end in a ``KeyboardInterrupt`` traceback. So:

1. :func:`record` (first thing): INT, TERM and QUIT are only noted;
2. :func:`hand_over` (right before the ``exec``): they are blocked, and the first one noted
   is raised again: it stays pending across the ``exec`` (the mask and the pending set are
   inherited, the handlers are not);
3. :func:`take_over` (the supervisor, once its handlers are in place): unblocked, the
   pending signal reaches the supervisor, which stops as it always does (children stopped,
   128 + the signal). The supervisor starts no child before that: a child would inherit the
   block.

Django's own start-up under ``manage.py`` runs before any of this. No Django here.
"""

from __future__ import annotations

import signal

STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)
received: list[int] = []


def _note(signum: int, _frame: object) -> None:
    received.append(signum)


def record() -> None:
    """From now on a stop signal is noted, not acted on."""
    for sig in STOPS:
        signal.signal(sig, _note)


def hand_over() -> None:
    """Block the stop signals for the ``exec``; the first one noted stays pending."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
    if received:
        signal.raise_signal(received[0])


def take_over() -> None:
    """The supervisor's handlers are in place: a pending stop signal reaches them now."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)
