"""No test leaves a process behind: children are tied to pytest, and leftovers are killed by group.

Issue 17: after a full ``make test`` run in which two "second worker joins" tests timed out, two
``engage worker`` processes of those tests were still running 27 minutes later. Three layers:

1. :func:`die_with_pytest` (a ``preexec_fn``): a child gets SIGTERM when pytest dies, even by SIGKILL
   or pytest-timeout's ``thread`` method (``os._exit``, no finalizer runs), and its own process group,
   so that the group can be killed whole.
2. :func:`reap_new` after every test (an autouse fixture in ``tests/conftest.py``): every descendant of
   pytest that the test started and that still runs (a failing or timed-out test skips its own
   ``stop()``), and its process group, get SIGTERM, then SIGKILL after a grace period.
3. The same at the end of the session, for whatever a session fixture left.

pytest-timeout runs with its ``signal`` method (``pyproject.toml``): the timeout is raised in the test,
so its ``finally`` blocks and fixture finalizers run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from pathlib import Path

GRACE_S = 5.0


def die_with_pytest() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setpgrp()


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def descendants(root: int | None = None) -> dict[int, int]:
    """Every live (not zombie) descendant of ``root`` (default: this process) → its process group."""
    root = os.getpid() if root is None else root
    parent: dict[int, int] = {}
    group: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[0] != "Z":
                parent[int(entry.name)] = int(fields[1])
                group[int(entry.name)] = int(fields[2])
    found: dict[int, int] = {}
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        for child, ppid in parent.items():
            if ppid == pid and child not in found:
                found[child] = group[child]
                frontier.append(child)
    return found


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def reap(pids: dict[int, int], grace_s: float = GRACE_S) -> list[int]:
    """SIGTERM each process and its group (never pytest's own), SIGKILL what is left after ``grace_s``.
    Returns the pids that were still alive."""
    own_group = os.getpgrp()
    alive = [pid for pid in pids if _alive(pid)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if pids[pid] != own_group:
                    os.killpg(pids[pid], sig)
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while any(_alive(pid) for pid in alive) and time.monotonic() < deadline:
            for pid in alive:  # our own children stay zombies until waited for
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        if not any(_alive(pid) for pid in alive):
            break
    return alive


def reap_new(before: set[int], grace_s: float = GRACE_S) -> list[int]:
    """Reap the descendants that were not there in ``before``; returns those that were still running."""
    return reap({pid: pgid for pid, pgid in descendants().items() if pid not in before}, grace_s)
