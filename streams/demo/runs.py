"""Where a demo run's event clock starts, so that running the demo again continues the history.

ClickHouse data in the data dir survives a run; the embedded Kafka (memory storage) and with it the
engagement state do not. So every run starts with fresh state, and its event clock starts after the
previous run's last event (at the next UTC midnight), never overlapping minutes ClickHouse already
has. The first run starts ``LEAD_DAYS`` before today, so that after a few minutes of the default
time scale the event clock has reached the present. ``<data dir>/demo.json`` keeps the record.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import orjson

DAY_MS = 86_400_000
LEAD_DAYS = 14
FILE_NAME = "demo.json"


def midnight(ms: int) -> int:
    return ms - ms % DAY_MS


def next_start_ms(last_event_ms: int | None, now_ms: int) -> int:
    """The next run's first event time: the UTC midnight after the previous run's last event, but
    not earlier than ``LEAD_DAYS`` before today."""
    earliest = midnight(now_ms) - LEAD_DAYS * DAY_MS
    if last_event_ms is None:
        return earliest
    return max(midnight(last_event_ms) + DAY_MS, earliest)


@dataclass(frozen=True)
class RunRecord:
    runs: int = 0  # runs completed so far
    last_event_ms: int | None = None  # the newest event time sent by the previous run
    first_start_ms: int | None = None  # where the first run's event clock started (the history's start)

    @classmethod
    def load(cls, data_dir: Path) -> RunRecord:
        path = data_dir / FILE_NAME
        try:
            document = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return cls()
        with contextlib.suppress(TypeError, ValueError, KeyError, AttributeError):
            last, first = document.get("last_event_ms"), document.get("first_start_ms")
            return cls(
                int(document["runs"]),
                None if last is None else int(last),
                None if first is None else int(first),
            )
        return cls()

    def save(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / FILE_NAME
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(
            orjson.dumps(
                {
                    "runs": self.runs,
                    "last_event_ms": self.last_event_ms,
                    "first_start_ms": self.first_start_ms,
                }
            )
        )
        tmp.replace(path)
