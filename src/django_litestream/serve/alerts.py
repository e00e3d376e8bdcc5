"""The alert webhook: a JSON POST when a replica outage starts and when it ends.

Sent from a thread of its own through a bounded queue, so that neither the replica checks
nor the server ever wait for it: each event gets a few attempts with a short timeout and a
growing pause, and a webhook that keeps failing is logged once (not once per attempt, nor
once per event) until it works again. The URL is never logged whole: a chat service's
webhook URL is itself a secret. No Django here.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from typing import TYPE_CHECKING, Any

from ..config.secrets import url_for_logs

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("django_litestream.serve")

TIMEOUT = 5.0  # seconds for one attempt
ATTEMPTS = 3
BACKOFF = 1.0  # seconds before the second attempt; doubled each time
QUEUE_SIZE = 100


class Webhook:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = TIMEOUT,
        attempts: int = ATTEMPTS,
        backoff: float = BACKOFF,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue(QUEUE_SIZE)
        self.stopping = threading.Event()
        self.failing = False  # the last event could not be delivered (already logged)
        self.sent = 0
        self.thread = threading.Thread(target=self.run, name="alert-webhook", daemon=True)
        self.thread.start()

    def send(self, event: dict[str, Any]) -> None:
        """Queue ``event``; never waits. A full queue drops it (and says so once)."""
        try:
            self.events.put_nowait(event)
        except queue.Full:
            if not self.failing:
                self.failing = True
                log.warning(
                    "The alert webhook %s is not keeping up; dropping events until it does",
                    url_for_logs(self.url),
                )

    def close(self, wait: float = 0.0) -> None:
        """Stop after the queued events, waiting for them at most ``wait`` seconds."""
        with contextlib.suppress(queue.Full):
            self.events.put_nowait(None)
        self.thread.join(wait)
        self.stopping.set()

    def run(self) -> None:
        import httpx  # here: only a serve with a webhook pays for it (~90 ms, ~10 MB)

        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            while True:
                event = self.events.get()
                if event is None:
                    return
                self.deliver(client, event)

    def deliver(self, client: httpx.Client, event: dict[str, Any]) -> None:
        import httpx  # already loaded by run()

        delay = self.backoff
        problem = ""
        for attempt in range(self.attempts):
            if attempt and self.stopping.wait(delay):
                return
            delay *= 2
            try:
                response = client.post(self.url, json=event)
            except httpx.HTTPError as exc:
                problem = f"{exc.__class__.__name__}"
                continue
            if 200 <= response.status_code < 300:
                self.sent += 1
                if self.failing:
                    self.failing = False
                    log.info("The alert webhook %s works again", url_for_logs(self.url))
                return
            problem = f"HTTP {response.status_code}"
        if not self.failing:
            self.failing = True
            log.warning(
                "Could not deliver the %s event to the alert webhook %s (%s, %d attempts); "
                "further failures are not logged until a delivery succeeds",
                event.get("event", "alert"),
                url_for_logs(self.url),
                problem,
                self.attempts,
            )
