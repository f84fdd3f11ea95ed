"""Drop detection through the real worker (stage 1 → engagement.account-hours → stage 2) and its sinks.

The replay: 8.5 days of event time for three accounts at 35-45 substantive comments an hour (plus
one-word comments, which do not count), one account cut by 90% for 4 hours on day 8 (after the
one-week warm-up). It is published in two phases around a SIGKILL of the worker, so the open alert
must survive the restart (``drop-state`` recovered from its changelog) and be resolved exactly once.
Alertmanager (Debian's ``prometheus-alertmanager``, with the deployed routing) receives it through
``ENGAGE_ALERTMANAGER_URL`` and notifies the brand receiver of the firing and the resolved alert.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streams.embedded.broker import EmbeddedBroker
from streams.engagement.drops import DropRule
from streams.engagement.model import HOUR_MS, Alert
from streams.engagement.records import alert_to_dict
from streams.events import Interaction
from streams.metrics import Metrics
from streams.producer import KafkaEventPublisher
from streams.runtime import create_topics
from streams.settings import Settings
from streams.sinks.backoff import Backoff
from streams.sinks.clickhouse import ClickHouseSink
from streams.worker.changelog import Record
from streams.worker.drops.stage import DropStage
from streams.worker.sink_retry import SinkWriter
from tests.drop_streams import MONDAY_MS, counts, key, messages, reference, routed
from tests.integration.alertmanager import AlertmanagerServer, WebhookReceiver, deploy_config
from tests.integration.worker.harness import WorkerEnv, WorkerProcess, read_topic, wait_for
from tests.scenarios import sentinels

ACCOUNTS = {"brand-a": 40.0, "brand-b": 35.0, "brand-cut": 45.0}
HOURS = 8 * 24 + 12
CUT_FIRST = 7 * 24 + 10  # day 8, 10:00 UTC (a Monday; the week before is the warm-up)
CUT_LAST = CUT_FIRST + 3
PHASE_1_HOURS = CUT_FIRST + 3  # published before the kill: the cut is still on


def _events(hourly: list[dict[str, int]], first_hour: int, seed: int) -> list[Interaction]:
    """Comments spread over each hour: the counted (substantive) ones plus ~20% one-word ones."""
    rng = random.Random(seed)
    out: list[Interaction] = []
    for i, row in enumerate(hourly):
        hour = first_hour + i
        for account in sorted(row):
            noise = round(row[account] * 0.2)
            for n in range(row[account] + noise):
                text = "really love this" if n < row[account] else "nice"
                out.append(
                    Interaction(
                        f"{account}-{hour}-{n}",
                        "comment",
                        "generic",
                        account,
                        f"fan{rng.randrange(500)}",
                        f"post{hour // 24}",
                        text,
                        MONDAY_MS + hour * HOUR_MS + rng.randrange(HOUR_MS),
                    )
                )
    return sorted(out, key=lambda e: e.occurred_at_ms)


def _sentinels(partitions: int, far_ms: int) -> list[Interaction]:
    """One one-word comment per stream partition at ``far_ms``, to move every watermark past the end.

    Comments, not likes: on the comment topic they queue behind the stream's last comments. (Stage 1
    keeps a watermark per stream partition over four topics; a like far ahead on the like topic could
    be read first and make the remaining comments late.)
    """
    return [
        Interaction(f"sentinel-{e.actor_id}", "comment", "generic", "sentinel", e.actor_id, "p", "ok", far_ms)
        for e in sentinels(partitions, far_ms)
    ]


def _publish(settings: Settings, events: list[Interaction]) -> None:
    with KafkaEventPublisher(
        settings.kafka_bootstrap_servers, settings.topics, settings.topic_partitions, max_batch=200
    ) as publisher:
        publisher.send(events)


def _alerts(settings: Settings, until: Any, seconds: float) -> list[dict[str, Any]]:
    return read_topic(settings.kafka_bootstrap_servers, settings.topics.alerts, seconds, until=until)


def _metric(worker: WorkerProcess, line_start: str) -> float | None:
    for line in worker.metrics_text().splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return None


def _firing(am: AlertmanagerServer, account: str) -> list[dict[str, Any]]:
    return [a for a in am.alerts() if a["labels"].get("account_id") == account]


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"], ids=["memory", "rocksdb"])
def test_a_cut_account_opens_and_resolves_exactly_once(
    broker: EmbeddedBroker, tmp_path: Path, store: str
) -> None:
    """On both state stores: stage 2's drop-state table lives in the same store as stage 1's."""
    started = time.monotonic()
    hourly = counts(ACCOUNTS, HOURS, seed=42, cut=("brand-cut", CUT_FIRST, CUT_LAST, 0.1))
    expected = [alert_to_dict(a) for a in reference(hourly)]
    assert [(a["account_id"], a["state"]) for a in expected] == [
        ("brand-cut", "opened"),
        ("brand-cut", "resolved"),
    ]
    opened = expected[0]
    assert opened["at"] <= MONDAY_MS + (CUT_FIRST + 2) * HOUR_MS  # within 2 event-time hours of the cut
    phase_1 = _events(hourly[:PHASE_1_HOURS], 0, seed=1)
    far = MONDAY_MS + (HOURS + 24) * HOUR_MS
    phase_2 = _events(hourly[PHASE_1_HOURS:], PHASE_1_HOURS, seed=2)

    (tmp_path / "am").mkdir()
    with WebhookReceiver() as hook, AlertmanagerServer(tmp_path / "am", deploy_config(hook.url)) as am:
        cfg = WorkerEnv(
            broker.bootstrap,
            tmp_path / "data",
            extra={"ENGAGE_ALERTMANAGER_URL": am.url, "ENGAGE_STATE_STORE": store},
        )
        settings = Settings.from_env(cfg.env(0))
        create_topics(settings, broker.bootstrap)
        worker = WorkerProcess(cfg)
        try:
            _publish(settings, phase_1)
            records = _alerts(settings, lambda r: len(r) >= 1, 90)
            assert records == [opened], worker.log()[-3000:]
            wait_for(lambda: _firing(am, "brand-cut"), 20, what="the alert in Alertmanager")
            (firing,) = _firing(am, "brand-cut")
            assert firing["labels"] == {
                "alertname": "EngagementDrop",
                "account_id": "brand-cut",
                "kind": "drop",
                "severity": "warning",
            }
            assert firing["status"]["state"] == "active"
            # routed by the deployed config to the brand receiver, one group per account
            (path, note), *_ = hook.wait_for(1)
            assert (path, note["status"], note["groupLabels"]) == (
                "/brands",
                "firing",
                {"alertname": "EngagementDrop", "account_id": "brand-cut"},
            )
            assert _metric(worker, 'engage_drop_alerts_total{kind="drop",state="opened"}') == 1
            assert _metric(worker, "engage_drop_alerts_open ") == 1
            time.sleep(1.0)  # let the worker commit what it acknowledged, then crash it
            worker.kill()
            phase_1_done = time.monotonic()

            worker = WorkerProcess(cfg)
            _publish(settings, phase_2 + _sentinels(cfg.partitions, far))
            records = _alerts(settings, lambda r: len(r) >= 2, 120)
            assert records == expected, worker.log()[-3000:]
            wait_for(lambda: not _firing(am, "brand-cut"), 20, what="the alert resolved in Alertmanager")
            notes = hook.wait_for(2)
            assert [(p, n["status"]) for p, n in notes] == [("/brands", "firing"), ("/brands", "resolved")]
            assert _metric(worker, 'engage_drop_alerts_total{kind="drop",state="resolved"}') == 1
            assert _metric(worker, "engage_drop_alerts_open ") == 0
            assert _metric(worker, "engage_drop_late_partials_total ") == 0
            # the sentinels far ahead close every hour up to the one before theirs (the rest are gaps)
            wait_for(
                lambda: all(
                    _metric(worker, f'engage_drop_hour_closed_seconds{{partition="{q}"}}')
                    == (far - HOUR_MS) / 1000
                    for q in range(cfg.partitions)
                ),
                20,
                what="every account-hours partition to close the hours before the sentinels",
            )
            assert _alerts(settings, None, 3) == expected  # and the gap opened no silence
        finally:
            worker.stop()
    print(
        f"\n{len(phase_1) + len(phase_2)} events; phase 1 (incl. worker start) "
        f"{phase_1_done - started:.1f}s, total {time.monotonic() - started:.1f}s"
    )


class _Port:
    """Kafka twin for the ClickHouse test below (the topic path is covered by the test above)."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []

    async def send_alerts(self, records: list[tuple[bytes, bytes]]) -> None:
        self.sent.extend(records)

    async def sync_state(self, records: list[Record]) -> None:
        pass


def test_alerts_land_in_clickhouse_once_even_when_a_message_is_replayed(
    ch_client: Any, ch_database: str
) -> None:
    metrics = Metrics.create(CollectorRegistry())
    sink = ClickHouseSink.for_client(ch_client, ch_database, metrics, migrate=True)
    partitions = 2
    hourly = counts(
        {"acme": 50.0, "globex": 30.0}, 8 * 24 + 8, seed=5, cut=("acme", 7 * 24 + 2, 7 * 24 + 4, 0.0)
    )
    items = routed(messages(hourly, partitions, seed=6), partitions)
    expected = reference(hourly)
    assert [(a.account_id, a.kind, a.state) for a in expected] == [
        ("acme", "silence", "opened"),
        ("acme", "silence", "resolved"),
    ]

    def new_stage(table: dict[bytes, bytes]) -> DropStage:
        writer = SinkWriter(sink, Backoff(rand=lambda: 0.0), metrics)
        return DropStage(DropRule(), partitions, table, _Port(), writer, metrics)

    async def run(stage: DropStage, items: list[tuple[int, bytes]]) -> list[Alert]:
        alerts: list[Alert] = []
        for partition, value in items:
            handled = await stage.process(partition, value)
            if handled is not None:
                alerts += handled.alerts
        return alerts

    table: dict[bytes, bytes] = {}
    stage = new_stage(table)
    half = len(items) // 2
    first = asyncio.run(run(stage, items[:half]))
    snapshot = dict(table)  # a crash here: everything after it is processed again
    second = asyncio.run(run(stage, items[half:]))
    replayed = asyncio.run(run(new_stage(snapshot), items[half:]))
    assert sorted(first + second, key=key) == expected and replayed == second and second

    rows = ch_client.query(
        f"SELECT alert_id, account_id, kind, state, toUnixTimestamp64Milli(at), observed, baseline, "
        f"toUnixTimestamp64Milli(opened_at) FROM {ch_database}.engagement_alerts ORDER BY at, state"
    ).result_rows
    assert [tuple(r) for r in rows] == [
        (a.alert_id, a.account_id, a.kind, a.state, a.at_ms, a.observed, a.baseline, a.opened_at_ms)
        for a in expected
    ]
    # the replay's inserts did reach ClickHouse, which dropped them by their tokens
    written = metrics.registry.get_sample_value(
        "engage_sink_rows_written_total", {"table": "engagement_alerts"}
    )
    assert written == len(expected) + len(replayed)
