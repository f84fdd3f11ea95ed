"""A worker stops within a bound after SIGTERM/SIGINT, even when a shutdown step waits on a dead broker.

Why: Faust's worker (mode ``Worker``; faust-streaming 0.15.3, mode-streaming 0.7.1, aiokafka 0.14)
handles the first signal only, by stopping its services one after the other; a later SIGTERM does
nothing. With the broker gone, stopping the consumer thread waits on its group coordinator, retried
without end (measured: the last log line is the consumer thread's "Stopping..."), and the process
ignored SIGTERM for good: two orphaned test workers were still running 27 minutes later (issue
17). ``tests/integration/worker/test_shutdown.py`` reproduces it.

The bound: the first signal arms a timer; if the process is still alive ``STOP_DEADLINE_S`` later, the
stacks of every thread are written to stderr (where it was stuck) and the process exits at once with
``EXIT_STOP_DEADLINE``. Nothing is lost by that: offsets are committed only after the sink wrote (see
``streams/worker/runner.py``), so what the cut-short shutdown did not commit is replayed by the next
owner, and the sink's writes are idempotent.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import threading
from typing import Any

from faust.worker import Worker

log = logging.getLogger(__name__)

# Inside the 30 s a supervisor (the test harness, ``engage demo`` waits 60 s) gives before SIGKILL, and
# well above a clean stop (a final flush and commit, about a second here).
STOP_DEADLINE_S = 20.0
EXIT_STOP_DEADLINE = 3


def arm(deadline_s: float, exit_code: int = EXIT_STOP_DEADLINE) -> threading.Timer:
    """Exit the process ``deadline_s`` from now unless it has exited by then (a daemon timer thread)."""

    def give_up() -> None:
        try:
            log.error("did not stop within %.0fs of the signal; exiting now (stacks follow)", deadline_s)
            for handler in logging.getLogger().handlers:
                handler.flush()
            # fd 2: Faust replaces sys.stderr with a logging proxy that has no file descriptor.
            faulthandler.dump_traceback(file=2, all_threads=True)
        finally:
            os._exit(exit_code)

    timer = threading.Timer(deadline_s, give_up)
    timer.daemon = True
    timer.start()
    return timer


class BoundedStopWorker(Worker):
    """Faust's ``Worker`` whose first SIGTERM/SIGINT also arms :func:`arm`."""

    stop_deadline_s: float = STOP_DEADLINE_S
    _deadline: threading.Timer | None = None

    def _schedule_shutdown(self, signal: Any) -> None:
        if self._deadline is None:
            self._deadline = arm(self.stop_deadline_s)
        super()._schedule_shutdown(signal)
