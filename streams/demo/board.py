"""What the demo screen shows, as plain data: pure, fed by the probes, read by the screen.

- :func:`pipeline_numbers` reads the counters the demo needs from the worker's and the ingest
  service's ``/metrics`` text (the names are the ones declared in :mod:`streams.metrics`).
- :class:`Rates` turns successive cumulative counters into per-second rates over a short window.
- :class:`Board` follows the ``engagement.flags`` and ``engagement.alerts`` records: engaged
  followers per account now (the latest transition of each pair wins, so a re-emitted record counts
  once), the newest transitions and alerts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]
Samples = dict[tuple[str, Labels], float]


def parse_samples(text: str) -> Samples:
    """Prometheus exposition text → ``{(sample name, sorted labels): value}``."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return samples


def total(samples: Samples, name: str, **match: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``match``."""
    return sum(
        value
        for (sample, labels), value in samples.items()
        if sample == name and all((k, v) in labels for k, v in match.items())
    )


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for (sample, labels), value in samples.items():
        if sample == name:
            key = dict(labels).get(label, "")
            out[key] = out.get(key, 0.0) + value
    return out


@dataclass(frozen=True)
class PipelineNumbers:
    """Cumulative counters and current gauges of the running pipeline."""

    accepted: int = 0  # events ingest published to Kafka
    ingest_dead_lettered: int = 0  # events ingest dead-lettered (unmappable, invalid)
    processed: int = 0  # valid events the worker read (duplicates and late ones included)
    deduplicated: int = 0  # of those, redeliveries the worker dropped
    rejected: int = 0  # events the worker dead-lettered: late ones, and invalid ones it could not read
    invalid: int = 0  # of those, the invalid ones (not in ``processed``)
    lag: int = 0  # messages behind the high-water mark, summed over partitions
    engaged: int = 0  # transitions to engaged so far
    lapsed: int = 0  # transitions to lapsed so far
    engaged_now: int = 0  # the worker's gauge of engaged pairs
    watermark_ms: int | None = None  # the slowest partition's event-time watermark
    sink_rows: int = 0  # rows written to ClickHouse
    alerts_open: int = 0
    dlq: Mapping[str, int] = field(default_factory=dict)  # by reason, worker and ingest together
    worker_up: bool = False
    ingest_up: bool = False

    @property
    def handled(self) -> int:
        """Events the worker is done with: read (valid) or dead-lettered as invalid."""
        return self.processed + self.invalid


def pipeline_numbers(worker: Samples | None, ingest: Samples | None) -> PipelineNumbers:
    """The numbers from the two scrapes (``None``: that endpoint did not answer)."""
    w = worker or {}
    i = ingest or {}
    dlq: dict[str, int] = {}
    for source in (w, i):
        for reason, value in by_label(source, "engage_dlq_messages_total", "reason").items():
            dlq[reason] = dlq.get(reason, 0) + int(value)
    marks = [v for (name, _), v in w.items() if name == "engage_watermark_seconds" and v > 0]
    transitions = by_label(w, "engage_transitions_total", "kind")
    rejected = by_label(w, "engage_events_rejected_total", "reason")
    return PipelineNumbers(
        accepted=int(total(i, "engage_webhook_events_total", outcome="accepted")),
        ingest_dead_lettered=int(total(i, "engage_webhook_events_total", outcome="dlq")),
        processed=int(total(w, "engage_events_consumed_total")),
        deduplicated=int(total(w, "engage_events_deduplicated_total")),
        rejected=int(sum(rejected.values())),
        invalid=int(sum(v for reason, v in rejected.items() if reason != "late")),
        lag=int(total(w, "engage_consumer_lag_messages")),
        engaged=int(transitions.get("engaged", 0)),
        lapsed=int(transitions.get("lapsed", 0)),
        engaged_now=int(total(w, "engage_engaged_followers")),
        watermark_ms=int(min(marks) * 1000) if marks else None,
        sink_rows=int(total(w, "engage_sink_rows_written_total")),
        alerts_open=int(total(w, "engage_drop_alerts_open")),
        dlq=dlq,
        worker_up=worker is not None,
        ingest_up=ingest is not None,
    )


class Rates:
    """Per-second rates of named cumulative counters over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 3.0) -> None:
        self._window_s = window_s
        self._history: deque[tuple[float, Mapping[str, float]]] = deque()

    def add(self, now_s: float, counters: Mapping[str, float]) -> None:
        self._history.append((now_s, dict(counters)))
        while len(self._history) > 2 and now_s - self._history[1][0] >= self._window_s:
            self._history.popleft()

    def rate(self, name: str) -> float:
        if len(self._history) < 2:
            return 0.0
        (t0, first), (t1, last) = self._history[0], self._history[-1]
        if t1 <= t0:
            return 0.0
        return max(0.0, (last.get(name, 0.0) - first.get(name, 0.0)) / (t1 - t0))


@dataclass(frozen=True)
class AccountRow:
    account_id: str
    platform: str
    followers: int  # the audience model's followers of the account (the ratio's denominator)
    engaged: int  # engaged followers now

    @property
    def ratio(self) -> float:
        return self.engaged / self.followers if self.followers else 0.0


@dataclass(frozen=True)
class TransitionLine:
    at_ms: int
    kind: str
    account_id: str
    actor_id: str
    count: int


@dataclass(frozen=True)
class AlertLine:
    at_ms: int
    kind: str
    state: str
    account_id: str
    observed: float
    baseline: float


class Board:
    """Engaged followers per account, from the transitions; the newest transitions and alerts.

    ``accounts`` is ``(account_id, platform, followers)`` in the order the screen lists them.
    """

    def __init__(self, accounts: Iterable[tuple[str, str, int]], *, recent: int = 8) -> None:
        self._accounts = list(accounts)
        self._pairs: dict[tuple[str, str], tuple[int, str]] = {}  # (account, actor) → (at, kind)
        self._engaged: dict[str, int] = {}
        self._seen_alerts: set[str] = set()
        self.transitions: deque[TransitionLine] = deque(maxlen=recent)
        self.alerts: deque[AlertLine] = deque(maxlen=recent)
        self.open_alerts: dict[tuple[str, str], AlertLine] = {}
        self.counts = {"engaged": 0, "lapsed": 0}  # distinct transitions read
        self.flags_read = 0
        self.alerts_read = 0
        self.alerts_total = 0  # distinct alert records (opened and resolved)

    def add_flag(self, record: Mapping[str, Any]) -> None:
        """One ``engagement.flags`` record (``schemas/events/engagement_flag.v1.json``)."""
        self.flags_read += 1
        account, actor, kind, at = record["account_id"], record["actor_id"], record["kind"], int(record["at"])
        key = (account, actor)
        previous = self._pairs.get(key)
        if previous is not None and previous[0] > at:
            return  # an older transition re-read after a newer one: the newer one stands
        if previous == (at, kind):
            return  # the same transition again (a replay re-emits identical records)
        was = previous is not None and previous[1] == "engaged"
        now = kind == "engaged"
        self._pairs[key] = (at, kind)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if was != now:
            self._engaged[account] = self._engaged.get(account, 0) + (1 if now else -1)
        self.transitions.append(TransitionLine(at, kind, account, actor, int(record.get("count", 0))))

    def add_alert(self, record: Mapping[str, Any]) -> None:
        """One ``engagement.alerts`` record (``schemas/events/engagement_alert.v1.json``)."""
        self.alerts_read += 1
        alert_id = str(record.get("alert_id", ""))
        if alert_id and alert_id in self._seen_alerts:
            return
        self._seen_alerts.add(alert_id)
        self.alerts_total += 1
        line = AlertLine(
            int(record["at"]),
            str(record["kind"]),
            str(record["state"]),
            str(record["account_id"]),
            float(record.get("observed", 0.0)),
            float(record.get("baseline", 0.0)),
        )
        self.alerts.append(line)
        key = (line.account_id, line.kind)
        if line.state == "opened":
            self.open_alerts[key] = line
        else:
            self.open_alerts.pop(key, None)

    def engaged(self, account_id: str) -> int:
        return self._engaged.get(account_id, 0)

    @property
    def engaged_total(self) -> int:
        return sum(self._engaged.values())

    def rows(self, limit: int) -> list[AccountRow]:
        return [
            AccountRow(account, platform, followers, self.engaged(account))
            for account, platform, followers in self._accounts[:limit]
        ]
