"""A fair, bounded queue in front of the model: at most ``slots`` films are scored at once, first come first served.

Streamlit serves each browser session from its own thread. Twenty sessions scoring at once on two
cores share the CPU with each other and with the server's event loop, so every one of them finishes
late (all at about the same time) and the websocket pings can go unanswered. Through this queue each
film runs at close to full speed in arrival order, the others wait without using the CPU, and a
waiting session is told how many films are ahead of it. Tickets are served strictly in order; a waiter
that gives up (its session was closed or rerun) hands its turn on instead of blocking the line.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

POLL_SECONDS = 1.0


def default_slots() -> int:
    """``LUCIDDX_INFERENCE_SLOTS``, else half the CPUs (at least one): TF uses several cores per film."""
    configured = os.environ.get("LUCIDDX_INFERENCE_SLOTS", "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    from core.engine import serving

    if serving.enabled():  # films go to Serve replicas: let a full batch per replica through, so they batch
        return serving.replicas_wanted() * serving.MAX_BATCH
    return max(1, (os.cpu_count() or 2) // 2)


class FairQueue:
    """First come, first served admission of at most ``slots`` holders at a time."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._cond = threading.Condition()
        self._next_ticket = 0
        self._serving = 0  # the lowest ticket not yet admitted
        self._running = 0
        self._abandoned: set[int] = set()

    def _skip_abandoned(self) -> None:
        while self._serving in self._abandoned:
            self._abandoned.discard(self._serving)
            self._serving += 1

    def waiting(self) -> int:
        with self._cond:
            return self._next_ticket - self._serving

    @contextmanager
    def slot(self, on_wait: Callable[[int], None] | None = None) -> Iterator[None]:
        """Hold one slot for the block; ``on_wait(films_ahead)`` is called while waiting, when it changes."""
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
        told = None
        try:
            while True:
                with self._cond:
                    self._skip_abandoned()
                    if ticket == self._serving and self._running < self.slots:
                        self._serving += 1
                        self._running += 1
                        break
                    ahead = ticket - self._serving + self._running  # films scored or waiting before this one
                if on_wait is not None and ahead != told:
                    told = ahead
                    on_wait(ahead)  # outside the lock: a page update may raise to stop this session
                with self._cond:
                    self._cond.wait(POLL_SECONDS)
        except BaseException:
            with self._cond:
                self._abandoned.add(ticket)
                self._skip_abandoned()
                self._cond.notify_all()
            raise
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()


QUEUE = FairQueue(default_slots())
