"""The processes of ``engage demo``: the embedded broker, one ``engage worker``, one ``engage ingest``.

Children are started as ``python -m streams.cli <command>`` with an environment the demo builds from
its own (:func:`child_env`), their output going to ``<data dir>/logs/<name>.log``. Each child gets
``PR_SET_PDEATHSIG`` (SIGTERM) and its own process group, like the embedded broker: Ctrl-C in the
terminal reaches only the demo, which then stops the children in order (ingest, then the worker, which
flushes its sink on SIGTERM, then the broker), and even a SIGKILLed demo leaves no orphans.

``PR_SET_PDEATHSIG`` fires when the *thread* that forked the child ends, so children are started from
the main thread only.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from streams import runtime
from streams.embedded.broker import EmbeddedBroker, free_port
from streams.errors import EngageError
from streams.settings import ENV_VARS, Settings

log = logging.getLogger(__name__)

_KNOWN_VARS = frozenset(var.name for var in ENV_VARS)


class ChildFailed(EngageError):
    """Raised by :meth:`Child.check_alive` when a child process of the demo (worker, ingest) exited on its
    own; the message carries the tail of its log and the log's path. The demo stops the other children
    and ``engage`` prints the message and exits 1."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setpgrp()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a live process has used so far (Linux ``/proc``), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float | None:
    """The resident set of a live process in MiB (Linux ``/proc``), else None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def port_or_free(host: str, wanted: int) -> int:
    """``wanted`` when it can be bound on ``host`` now, else a free port (0 always means a free one)."""
    if wanted > 0:
        with socket.socket() as sock:
            try:
                sock.bind((host, wanted))
                return wanted
            except OSError:
                pass
    return free_port(host)


def child_env(base: Mapping[str, str], overrides: Mapping[str, str]) -> dict[str, str]:
    """The environment of a child: ``base`` with ``overrides`` applied.

    Every ``ENGAGE_*`` override must be a declared setting: the child's ``Settings.from_env`` rejects
    unknown ones, and failing here is clearer than a child dying at start.
    """
    unknown = sorted(k for k in overrides if k.startswith("ENGAGE_") and k not in _KNOWN_VARS)
    if unknown:
        raise ValueError(f"not a setting: {', '.join(unknown)}")
    env = dict(base)
    env.update(overrides)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Child:
    """One ``engage`` sub-command running as a child process, output appended to ``log_path``."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        with self.log_path.open("wb") as out:
            self._proc = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                preexec_fn=_die_with_parent,
            )
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def check_alive(self) -> None:
        code = self.returncode
        if self._proc is not None and code is not None:
            raise ChildFailed(f"{self.name} exited with status {code}; see {self.log_path}:\n{self.tail()}")

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout_s: float, give_up: Callable[[], bool] = lambda: False) -> int | None:
        """SIGTERM, wait up to ``timeout_s`` (or until ``give_up()``), then SIGKILL. Returns the exit
        status (None: never started)."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while proc.poll() is None and time.monotonic() < deadline and not give_up():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(0.2)
            if proc.poll() is None:
                log.warning("%s did not stop (waited %.0fs); killing it", self.name, timeout_s)
                proc.kill()
                proc.wait()
        return proc.returncode


@dataclass(frozen=True)
class Endpoints:
    """Where the running demo's pieces are, for the screen and the user."""

    bootstrap: str
    ingest_url: str
    ingest_metrics: str
    worker_metrics: str
    data_dir: Path
    log_dir: Path
    embedded_kafka: bool


class Orchestrator:
    """Start broker → topics → worker → ingest (:meth:`start`); stop in the reverse order (:meth:`stop`).

    ``overrides`` are extra environment variables for both children (e.g. the demo's shorter
    ``ENGAGE_WINDOW`` and the per-run webhook secrets); ``base_env`` is the environment they inherit.
    """

    def __init__(
        self,
        settings: Settings,
        base_env: Mapping[str, str],
        overrides: Mapping[str, str],
        *,
        python: str = sys.executable,
        worker_stop_timeout_s: float = 60.0,
    ) -> None:
        self.settings = settings
        self._base_env = dict(base_env)
        self._overrides = dict(overrides)
        self._python = python
        self._worker_stop_timeout_s = worker_stop_timeout_s
        self.data_dir = settings.data_dir.resolve()
        self.log_dir = self.data_dir / "logs"
        self.broker: EmbeddedBroker | None = None
        self.worker: Child | None = None
        self.ingest: Child | None = None
        self.endpoints: Endpoints | None = None

    @property
    def children(self) -> list[Child]:
        return [c for c in (self.worker, self.ingest) if c is not None]

    def cpu_usage(self) -> dict[str, float]:
        """CPU seconds used so far by each process the demo started."""
        pids = {child.name: child.pid for child in self.children}
        if self.broker is not None:
            pids["broker"] = self.broker.pid
        usage = {name: cpu_seconds(pid) for name, pid in pids.items() if pid is not None}
        return {name: seconds for name, seconds in usage.items() if seconds is not None}

    def broker_memory_mb(self) -> float | None:
        """The embedded broker's resident set (None: no embedded broker, or it is gone)."""
        pid = self.broker.pid if self.broker is not None else None
        return rss_mb(pid) if pid is not None else None

    def start(self) -> Endpoints:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        settings = self.settings
        if settings.embedded_kafka:
            self.broker = EmbeddedBroker(log_path=str(self.log_dir / "broker.log")).start()
            bootstrap = self.broker.bootstrap
        else:
            bootstrap = settings.kafka_bootstrap_servers
        runtime.create_topics(settings, bootstrap)

        host = settings.ingest_host
        metrics_host = settings.worker_metrics_host
        metrics_port = port_or_free(metrics_host, settings.worker_metrics_port)
        ingest_port = port_or_free(host, settings.ingest_port)
        ingest_metrics_host = settings.ingest_metrics_host
        ingest_metrics_port = port_or_free(ingest_metrics_host, settings.ingest_metrics_port)
        common = {
            **self._overrides,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "ENGAGE_DATA_DIR": str(self.data_dir),
        }
        cli = [self._python, "-m", "streams.cli"]
        self.worker = Child(
            "worker",
            [*cli, "worker", "--sink", "clickhouse", "--loglevel", "info"],
            child_env(
                self._base_env,
                {
                    **common,
                    "ENGAGE_WORKER_METRICS_PORT": str(metrics_port),
                },
            ),
            self.log_dir / "worker.log",
        ).start()
        self.ingest = Child(
            "ingest",
            [*cli, "ingest", "--host", host, "--port", str(ingest_port)],
            child_env(self._base_env, {**common, "ENGAGE_INGEST_METRICS_PORT": str(ingest_metrics_port)}),
            self.log_dir / "ingest.log",
        ).start()

        def shown(bound: str) -> str:
            return "127.0.0.1" if bound in ("0.0.0.0", "") else bound

        self.endpoints = Endpoints(
            bootstrap=bootstrap,
            ingest_url=f"http://{shown(host)}:{ingest_port}",
            ingest_metrics=f"http://{shown(ingest_metrics_host)}:{ingest_metrics_port}/metrics",
            worker_metrics=f"http://{shown(metrics_host)}:{metrics_port}/metrics",
            data_dir=self.data_dir,
            log_dir=self.log_dir,
            embedded_kafka=settings.embedded_kafka,
        )
        return self.endpoints

    def check_children(self) -> None:
        """Raise :class:`ChildFailed` if a child exited on its own."""
        for child in self.children:
            child.check_alive()

    def stop_ingest(self, give_up: Callable[[], bool] = lambda: False) -> int | None:
        return self.ingest.stop(10.0, give_up) if self.ingest else None

    def stop_worker(self, give_up: Callable[[], bool] = lambda: False) -> int | None:
        """SIGTERM the worker: it flushes its sink, which may take a while; ``give_up`` ends the wait."""
        return self.worker.stop(self._worker_stop_timeout_s, give_up) if self.worker else None

    def stop(self) -> dict[str, int | None]:
        """Stop whatever still runs, in order; returns each child's exit status."""
        statuses = {"ingest": self.stop_ingest(), "worker": self.stop_worker()}
        if self.broker is not None:
            self.broker.stop()
        return statuses
