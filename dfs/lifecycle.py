"""How a server process ends: a clean stop, within a bounded time.

A namenode or datanode told to stop (SIGTERM, SIGINT, or `cluster up`'s
parent-death signal) closes its servers and its store and exits. A CI run
found a `cluster up` namenode that took its SIGTERM and never stopped: its
handler deadlocked on a lock its own main thread held (``StopSignals``
says how, and how it is avoided). Should the clean stop itself hang - a lock
held by a call stuck on a dying peer, the interpreter's exit joining a
worker thread - the process would keep its ports and its data dir's lock
for good: ``exit_after`` arms a watchdog when the stop begins; past the
deadline the process exits at once. Nothing acknowledged
depends on the clean path: commits are durable before their reply, replicas
before their acknowledgement.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

log = logging.getLogger(__name__)

STOP_DEADLINE = 12.0   # seconds a clean stop may take (gRPC's grace is 2 s of it)


class StopSignals:
    """Records SIGTERM and SIGINT from the moment it is made; ``wait`` blocks the main
    thread until one has come, or another thread sets ``done``. -> the signal (0 for
    ``done``).

    Made before a server says it is listening, so that a signal sent the moment it
    says so is a clean stop, not a KeyboardInterrupt traceback or a plain kill.

    The handlers only record the signal. They used to call ``Event.set()`` on the
    event the main thread was waiting on: a signal that came while the main thread
    held that event's lock (entering or leaving ``Event.wait``) ran the handler in the
    main thread, which then waited for the lock the main thread itself held - for
    ever. A fresh-clone CI run left a namenode that had taken its SIGTERM and never
    stopped (py-spy: four nested handlers blocked in ``Condition.__enter__``)."""

    def __init__(self) -> None:
        self.got: list[int] = []
        signal.signal(signal.SIGTERM, self._record)
        signal.signal(signal.SIGINT, self._record)

    def _record(self, signum, frame) -> None:
        self.got.append(signum)

    def wait(self, done: threading.Event | None = None) -> int:
        while not self.got and not (done is not None and done.is_set()):   # is_set takes no lock
            time.sleep(0.1)
        return self.got[0] if self.got else 0


def exit_after(seconds: float = STOP_DEADLINE, code: int = 1) -> None:
    """Exit the process with ``code`` unless it has ended within ``seconds`` from now."""
    def watchdog() -> None:
        time.sleep(seconds)
        log.error("clean stop took over %g s: exiting now", seconds)
        for h in logging.getLogger().handlers:
            try:
                h.flush()
            except Exception:   # noqa: BLE001 - exiting regardless
                pass
        os._exit(code)
    # A daemon thread runs on while the interpreter's exit joins the others.
    threading.Thread(target=watchdog, name="stop-deadline", daemon=True).start()
