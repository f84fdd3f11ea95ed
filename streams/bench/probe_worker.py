"""``engage worker --sink clickhouse`` whose sink reports when the latency probes became visible.

The benchmark's latency probes are events of dedicated accounts (ids starting with a prefix). chDB lets
one process open a data path, and the worker owns it, so the check runs here, in the worker: after each
successful batch write that carried probe rows, :class:`ProbeWatchSink` queries
``account_activity_1m`` on the writer's own connection and, for every probe account the query returns,
appends ``{"account": …, "visible_at": <unix seconds>}`` to the probe log. The query adds a few
milliseconds to those flushes only. Run by :mod:`streams.bench.latency` as
``python -m streams.bench.probe_worker --probe-log PATH`` with the worker's usual environment.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import IO, Protocol

import orjson

from streams.sinks.base import Sink, SinkBatch
from streams.sinks.clickhouse_migrations import quote_ident
from streams.sinks.rows import ACCOUNT_ACTIVITY

PROBE_PREFIX = "bench-probe-"


class ReadableSink(Sink, Protocol):
    database: str

    def query_rows(
        self, sql: str, parameters: dict[str, object] | None = None
    ) -> list[tuple[object, ...]]: ...


class ProbeWatchSink:
    def __init__(
        self,
        inner: ReadableSink,
        out: IO[bytes],
        *,
        prefix: str = PROBE_PREFIX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._inner = inner
        self._out = out
        self._prefix = prefix
        self._clock = clock
        self._table = f"{quote_ident(inner.database)}.{ACCOUNT_ACTIVITY}"

    def write(self, batch: SinkBatch) -> None:
        self._inner.write(batch)
        probes = sorted(
            {m.account_id for m in batch.account_minutes if m.account_id.startswith(self._prefix)}
        )
        if not probes:
            return
        rows = self._inner.query_rows(
            f"SELECT DISTINCT account_id FROM {self._table} WHERE account_id IN %(ids)s",
            {"ids": tuple(probes)},
        )
        now = self._clock()
        for (account,) in rows:
            self._out.write(orjson.dumps({"account": account, "visible_at": now}) + b"\n")
        self._out.flush()


def main(argv: list[str] | None = None) -> int:
    from streams.commands import worker
    from streams.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m streams.bench.probe_worker")
    parser.add_argument("--probe-log", required=True)
    parser.add_argument("--loglevel", default="warn")
    args = parser.parse_args(argv)
    with open(args.probe_log, "ab") as out:

        def wrap(sink: Sink) -> Sink:
            return ProbeWatchSink(sink, out)  # type: ignore[arg-type]  # the clickhouse sink reads

        worker_args = argparse.Namespace(sink="clickhouse", loglevel=args.loglevel, embedded=False)
        return worker.run(worker_args, Settings.from_env(), wrap_sink=wrap)


if __name__ == "__main__":
    sys.exit(main())
