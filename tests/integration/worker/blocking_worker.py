"""``engage worker`` whose event loop can be blocked from outside, to test ``/healthz``.

Run as ``python -m tests.integration.worker.blocking_worker worker …``. While the file named by
``BLOCKING_WORKER_FLAG`` exists, a callback on the worker's event loop sleeps (a blocking call, the
kind of bug ``/healthz`` is for); the metrics thread keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

from streams.cli import main
from streams.worker.faust_adapter import health as health_wiring

_install = health_wiring.install


def _install_with_blocker(
    app: Any, health: Any, topics: Any, loop: asyncio.AbstractEventLoop, *a: Any
) -> None:
    _install(app, health, topics, loop, *a)
    flag = Path(os.environ["BLOCKING_WORKER_FLAG"])

    def check() -> None:
        while flag.exists():
            time.sleep(0.1)  # blocks the loop: no heartbeat, no agent, no timer
        loop.call_later(0.2, check)

    loop.call_soon(check)


health_wiring.install = _install_with_blocker  # type: ignore[assignment]

if __name__ == "__main__":
    sys.exit(main())
