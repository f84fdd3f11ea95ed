"""Run one fault schedule against real workers, then compare what they wrote with the oracle.

The pieces are the real ones: the embedded Tansu broker, ``engage worker`` processes (each with its
own data directory, as on separate machines) writing with the ClickHouse sink over HTTP to one real
ClickHouse engine (chDB behind :mod:`tests.chaos.chfacade`, the only way several processes can share
one here), and real signals: SIGKILL, SIGSTOP/SIGCONT, CPU hogs.

After the faults, every stopped worker is continued, ClickHouse is up and at least one worker runs.
Once every interaction partition is owned and caught up, far-future sentinels finalise every window,
and the run waits until ClickHouse holds what the oracle expects (or a deadline passes). Then the
comparison: transitions (by content, and by ``transition_id`` on ``engagement.flags``), the per-minute
account and post aggregates, the follower scores, and the dead letters (there must be none).
"""

from __future__ import annotations

import dataclasses
import heapq
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.embedded.broker import EmbeddedBroker, _die_with_parent, free_port
from streams.engagement import Rule
from streams.events import Interaction
from streams.producer import KafkaEventPublisher
from streams.runtime import create_topics
from streams.settings import Settings
from tests.chaos.expected import ACCOUNT_COLUMNS, ALERT_FIELDS, POST_COLUMNS, Alert, Expected, expected
from tests.chaos.schedule import TRAFFIC_S, Schedule
from tests.drop_streams import poisson
from tests.integration.worker.harness import WorkerEnv, WorkerProcess, caught_up, read_topic, wait_for
from tests.scenarios import DAY, HOUR, scenario, sentinels

PARTITIONS = 4
MAX_WORKERS = 3
SLICES = 12


@dataclass
class Cluster:
    """The broker and the shared ClickHouse endpoint, started once for many schedules."""

    workdir: Path
    broker: EmbeddedBroker = field(init=False)
    facade: subprocess.Popen[bytes] = field(init=False)
    ch_port: int = field(init=False)

    def __enter__(self) -> Cluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.broker = EmbeddedBroker(log_path=str(self.workdir / "broker.log")).start()
        self.ch_port = free_port()
        self.facade = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.chaos.chfacade",
                "--path",
                str(self.workdir / "ch"),
                "--port",
                str(self.ch_port),
            ],
            stdout=(self.workdir / "chfacade.log").open("wb"),
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        wait_for(self._facade_answers, 60, what="the ClickHouse facade")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.facade.poll() is None:
            self.facade.kill()
            self.facade.wait(10)
        self.broker.stop()

    def _facade_answers(self) -> bool:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.ch_port}/ping", timeout=2) as resp:
            return bool(resp.status == 200)

    def clickhouse(self, mode: str) -> None:
        """``up``, ``down`` or ``lossy`` (inserts applied, then answered 503): see tests.chaos.chfacade."""
        import urllib.request

        path = mode
        request = urllib.request.Request(f"http://127.0.0.1:{self.ch_port}/__chaos/{path}", method="POST")
        urllib.request.urlopen(request, timeout=5).close()

    def dsn(self, database: str) -> str:
        return f"http://default:@127.0.0.1:{self.ch_port}/{database}"


@dataclass
class Result:
    schedule: Schedule
    injected: dict[str, int] = field(default_factory=dict)
    expected_transitions: int = 0
    missing: int = 0
    extra: int = 0
    flags_missing: int = 0
    flags_extra: int = 0
    reemits: int = 0
    account_rows_wrong: int = 0
    post_rows_wrong: int = 0
    scores_wrong: int = 0
    expected_alerts: int = 0
    alerts_missing: int = 0  # drop alerts, in ClickHouse or on engagement.alerts
    alerts_extra: int = 0
    dead_letters: int = 0
    seconds: float = 0.0
    error: str = ""
    details: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        wrong = (
            self.missing,
            self.extra,
            self.flags_missing,
            self.flags_extra,
            self.account_rows_wrong,
            self.post_rows_wrong,
            self.scores_wrong,
            self.alerts_missing,
            self.alerts_extra,
            self.dead_letters,
        )
        return not self.error and not any(wrong)

    @property
    def faults(self) -> int:
        return sum(self.injected.values())


# Drop detection needs an account with a week of history (the warm-up) and hours whose baseline clears
# ENGAGE_DROP_MIN_BASELINE: one account with a steady hourly rate, its substantive comments silenced
# for a few hours and cut for a few more in its second week, set to a minimum the rate clears.
DROP_ACCOUNT = "acc-steady"
DROP_RATE = 12  # substantive comments an hour
DROP_MIN_BASELINE = "4"


def stream(seed: int) -> list[Interaction]:
    """About 2,300 events of 60 followers and 5 accounts over 6 days of event time (W = 1 day), merged
    with about 3,000 of one steady account over the 3 days before and the same 6 days."""
    followers = scenario(seed)
    start = min(e.occurred_at_ms for e in followers) // HOUR - 3 * 24
    return list(heapq.merge(followers, steady_account(seed, start, 9 * 24), key=lambda e: e.occurred_at_ms))


def steady_account(seed: int, first_hour: int, hours: int) -> list[Interaction]:
    """``DROP_RATE`` substantive comments an hour (Poisson) from 2,000 fans, and a few one-word ones; in
    the second week two hours without a substantive one (a silence) and, later, three at a fifth of the
    rate (a drop). Which alerts that makes is for the detector to say (:func:`tests.chaos.expected`)."""
    rng = random.Random(seed * 31 + 7)
    silent = range(8 * 24 + 1, 8 * 24 + 3)
    cut = range(8 * 24 + 9, 8 * 24 + 12)
    out = []
    for hour in range(hours):
        rate = 0.0 if hour in silent else DROP_RATE * (0.2 if hour in cut else 1.0)
        substantive = poisson(rng, rate)
        for n in range(substantive + rng.randrange(3)):
            out.append(
                Interaction(
                    f"steady-{seed}-{hour}-{n}",
                    "comment",
                    "generic",
                    DROP_ACCOUNT,
                    f"fan{rng.randrange(2000)}",
                    f"post{hour // 24}",
                    "really love this" if n < substantive else "nice",
                    (first_hour + hour) * HOUR + rng.randrange(HOUR),
                )
            )
    return sorted(out, key=lambda e: e.occurred_at_ms)


class Run:
    """The processes of one schedule and the moves the faults make on them."""

    def __init__(self, cluster: Cluster, schedule: Schedule, workdir: Path) -> None:
        self.cluster, self.schedule, self.workdir = cluster, schedule, workdir
        self.database = f"chaos_{schedule.seed}_{uuid.uuid4().hex[:6]}"
        self.cfg = WorkerEnv(
            cluster.broker.bootstrap,
            workdir / "w0",
            partitions=PARTITIONS,
            extra={
                "CLICKHOUSE_DSN": cluster.dsn(self.database),
                "ENGAGE_MIGRATE_ON_START": "false",
                "ENGAGE_SINK_MAX_BACKOFF": "1s",
                "ENGAGE_DROP_MIN_BASELINE": DROP_MIN_BASELINE,
                "ENGAGE_STATE_STORE": schedule.store,
            },
        )
        self.settings = Settings.from_env(self.cfg.env(0))
        self.workers: list[WorkerProcess] = []
        self.stopped: set[int] = set()  # indexes into workers
        self.hogs: list[subprocess.Popen[bytes]] = []
        self.rng = random.Random(schedule.seed * 7919 + 1)
        self.injected: dict[str, int] = {}

    # --- processes --------------------------------------------------------------------------------

    def start_worker(self) -> None:
        index = len(self.workers)
        cfg = dataclasses.replace(self.cfg, data_dir=self.workdir / f"w{index}")
        self.workers.append(WorkerProcess(cfg, sink="clickhouse", log_name=f"worker{index}"))

    def running(self) -> list[int]:
        return [i for i, w in enumerate(self.workers) if w.proc.poll() is None and i not in self.stopped]

    def _count(self, kind: str) -> None:
        self.injected[kind] = self.injected.get(kind, 0) + 1

    def kill(self, restart_after: float, pending: list[tuple[float, str, Any]], now: float) -> None:
        alive = self.running()
        if not alive:
            return
        victim = self.workers[self.rng.choice(alive)]
        victim.kill()
        self._count("kill")
        pending.append((now + restart_after, "start", None))

    def zombie(self, stopped_for: float, pending: list[tuple[float, str, Any]], now: float) -> None:
        alive = self.running()
        if not alive:
            return
        if len(alive) == 1:
            self.start_worker()  # someone must take the stopped worker's partitions
        index = self.rng.choice(alive)
        self.workers[index].proc.send_signal(signal.SIGSTOP)
        self.stopped.add(index)
        self._count("zombie")
        pending.append((now + stopped_for, "cont", index))

    def cont(self, index: int) -> None:
        if index in self.stopped:
            self.stopped.discard(index)
            if self.workers[index].proc.poll() is None:
                self.workers[index].proc.send_signal(signal.SIGCONT)

    def load(self, seconds: float, pending: list[tuple[float, str, Any]], now: float) -> None:
        for _ in range(2):
            self.hogs.append(
                subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=_die_with_parent)
            )
        self._count("load")
        pending.append((now + seconds, "unload", None))

    def unload(self) -> None:
        for hog in self.hogs:
            hog.kill()
            hog.wait(10)
        self.hogs = []

    def cleanup(self) -> None:
        self.unload()
        for index in list(self.stopped):
            self.cont(index)
        for worker in self.workers:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGCONT)
                worker.stop()

    # --- the run ----------------------------------------------------------------------------------

    def execute(self) -> Result:
        result = Result(self.schedule)
        started = time.monotonic()
        try:
            self._execute(result)
        except Exception as exc:  # reported in the table with the seed; the run goes on with the next
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.cleanup()
            result.injected = dict(self.injected)
            result.seconds = time.monotonic() - started
        return result

    def _execute(self, result: Result) -> None:
        create_topics(self.settings, self.cluster.broker.bootstrap)
        _migrate(self.cfg.env(0))
        events = stream(self.schedule.seed)
        later = sentinels(PARTITIONS, max(e.occurred_at_ms for e in events) + 3 * DAY)
        want = expected(events + later, self.settings)
        result.expected_transitions = len(want.transitions)
        result.expected_alerts = len(want.alerts)
        self.start_worker()
        # The schedule's clock starts once the first worker owns every partition: faults at its
        # start-up would otherwise hit a process that has not joined the group yet.
        topics = self.settings.topics.interactions
        wait_for(lambda: caught_up(self.workers[:1], topics, PARTITIONS), 90, what="the first worker to join")
        publisher = threading.Thread(target=self._publish_slices, args=(events,), daemon=True)
        t0 = time.monotonic()
        publisher.start()
        pending: list[tuple[float, str, Any]] = [(f.at, f.kind, f.duration) for f in self.schedule.faults]
        while pending:
            pending.sort(key=lambda item: item[0])
            at, kind, arg = pending.pop(0)
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            self._do(kind, arg, pending, at)
        publisher.join()
        self.cleanup_faults()
        wait_for(
            lambda: caught_up([self.workers[i] for i in self.running()], topics, PARTITIONS),
            240,
            what="every partition owned and caught up",
        )
        _publish(self.settings, later)
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            attempt = Result(self.schedule)
            _compare(self, want, attempt)
            if attempt.ok:
                break
            time.sleep(2)
        time.sleep(3)  # anything extra (a duplicate or a wrong row) has time to show up too
        _compare_topics(self, want, _compare(self, want, result), result)

    def cleanup_faults(self) -> None:
        self.cluster.clickhouse("up")
        self.unload()
        for index in list(self.stopped):
            self.cont(index)
        if not self.running():
            self.start_worker()

    def _do(self, kind: str, arg: Any, pending: list[tuple[float, str, Any]], now: float) -> None:
        if kind == "kill":
            self.kill(arg, pending, now)
        elif kind == "start":
            if len(self.running()) < MAX_WORKERS:
                self.start_worker()
        elif kind == "zombie":
            self.zombie(arg, pending, now)
        elif kind == "cont":
            self.cont(arg)
        elif kind == "join":
            if len(self.running()) < MAX_WORKERS:
                self.start_worker()
                self._count("join")
        elif kind in ("ch_down", "ch_lossy"):
            self.cluster.clickhouse(kind.removeprefix("ch_"))
            self._count(kind)
            pending.append((now + arg, "ch_up", None))
        elif kind == "ch_up":
            self.cluster.clickhouse("up")
        elif kind == "load":
            self.load(arg, pending, now)
        elif kind == "unload":
            self.unload()
        else:
            raise ValueError(kind)

    def _publish_slices(self, events: list[Interaction]) -> None:
        step = len(events) // SLICES + 1
        t0 = time.monotonic()
        for i, start in enumerate(range(0, len(events), step)):
            time.sleep(max(0.0, t0 + i * TRAFFIC_S / SLICES - time.monotonic()))
            _publish(self.settings, events[start : start + step])


def _publish(settings: Settings, events: list[Interaction]) -> None:
    with KafkaEventPublisher(
        settings.kafka_bootstrap_servers, settings.topics, settings.topic_partitions, max_batch=40
    ) as publisher:
        publisher.send(events)


def _migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "streams.cli", "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


def _client(run: Run) -> Any:
    import clickhouse_connect

    return clickhouse_connect.get_client(dsn=run.cluster.dsn(run.database))


def _compare(run: Run, want: Expected, result: Result) -> set[str]:
    """Fill ``result`` from what ClickHouse holds; return the stored transition ids."""
    client = _client(run)
    try:
        rows = client.query(
            "SELECT transition_id, account_id, actor_id, kind, toUnixTimestamp64Milli(at), count "
            "FROM engagement_transitions FINAL"
        ).result_rows
        accounts = client.query(
            "SELECT account_id, toUnixTimestamp(minute), "
            "sum(likes), sum(comments), sum(shares), sum(follows), sum(unfollows), sum(substantive), "
            "sum(active), sum(passive), sum(engaged_new), sum(lapsed) "
            "FROM account_activity_1m GROUP BY account_id, minute"
        ).result_rows
        posts = client.query(
            "SELECT account_id, post_id, toUnixTimestamp(minute), "
            "sum(likes), sum(comments), sum(substantive_comments), sum(shares) "
            "FROM post_activity_1m GROUP BY account_id, post_id, minute"
        ).result_rows
        scores = client.query(
            "SELECT account_id, actor_id, score, toUnixTimestamp64Milli(as_of) FROM follower_scores FINAL"
        ).result_rows
        alerts = client.query(
            "SELECT alert_id, account_id, kind, state, toUnixTimestamp64Milli(at), observed, baseline, "
            "toUnixTimestamp64Milli(opened_at) FROM engagement_alerts FINAL"
        ).result_rows
    finally:
        client.close()
    by_id: dict[str, tuple[Any, ...]] = {}
    contents: set[tuple[Any, ...]] = set()
    for tid, account, actor, kind, at, count in rows:
        content = (account, actor, kind, int(at), int(count))
        if by_id.setdefault(tid, content) != content:
            result.extra += 1
            result.details.append(f"transition {tid} stored twice with different content")
        contents.add(content)
    missing, extra = want.transitions - contents, contents - want.transitions
    result.missing += len(missing)
    result.extra += len(extra)
    result.details += [f"missing {t}" for t in sorted(missing)[:5]] + [
        f"extra {t}" for t in sorted(extra)[:5]
    ]
    got_accounts = {
        (account, int(minute)): tuple(int(v) for v in values)
        for account, minute, *values in accounts
        if any(values)
    }
    result.account_rows_wrong = _diff(want.accounts, got_accounts, ACCOUNT_COLUMNS, "account", result.details)
    got_posts = {
        (account, post, int(minute)): tuple(int(v) for v in values)
        for account, post, minute, *values in posts
        if any(values)
    }
    result.post_rows_wrong = _diff(want.posts, got_posts, POST_COLUMNS, "post", result.details)
    got_scores = {(account, actor): (float(score), int(as_of)) for account, actor, score, as_of in scores}
    # A pair whose score decayed below the rule's floor is forgotten when the watermark passes that
    # point, which depends on drain timing: its next score restarts from zero instead of carrying the
    # remainder (less than the floor), so a stored score may be below the oracle's by up to the floor.
    floor = Rule.from_settings(run.settings).score_floor
    wrong = 0
    for key in want.scores.keys() | got_scores.keys():
        a, b = want.scores.get(key), got_scores.get(key)
        if a is None or b is None or a[1] != b[1] or not -1e-9 <= a[0] - b[0] <= floor:
            wrong += 1
            if wrong <= 3:
                result.details.append(f"score {key}: expected {a}, got {b}")
    result.scores_wrong = wrong
    _compare_alerts(want, alerts, result)
    return set(by_id)


def _compare_alerts(want: Expected, rows: list[tuple[Any, ...]], result: Result) -> None:
    by_id: dict[str, tuple[Any, ...]] = {}
    for alert_id, account, kind, state, at, observed, baseline, opened_at in rows:
        content = (account, kind, state, int(at), float(observed), float(baseline), int(opened_at))
        if by_id.setdefault(alert_id, content) != content:
            result.alerts_extra += 1
            result.details.append(f"alert {alert_id} stored twice with different content")
    got = set(by_id.values())
    missing, extra = want.alerts - got, got - want.alerts
    result.alerts_missing += len(missing)
    result.alerts_extra += len(extra)
    result.details += [f"missing alert {a}" for a in sorted(missing)[:3]]
    result.details += [f"extra alert {a}" for a in sorted(extra)[:3]]


def _compare_topics(run: Run, want: Expected, stored_ids: set[str], result: Result) -> None:
    """The flags topic carries every stored transition (re-emits of one id are identical), the alerts
    topic every expected alert, and the dead-letter topic nothing."""
    settings = run.settings
    flags = read_topic(settings.kafka_bootstrap_servers, settings.topics.flags, 3)
    seen: dict[str, dict[str, Any]] = {}
    for record in flags:
        tid = record["transition_id"]
        if seen.setdefault(tid, record) != record:
            result.flags_extra += 1
            result.details.append(f"flag {tid} re-emitted with different content")
    result.reemits = len(flags) - len(seen)
    result.flags_missing = len(stored_ids - seen.keys())
    result.flags_extra += len(seen.keys() - stored_ids)
    # engagement.alerts: every expected alert, each alert_id's records identical (re-emits), nothing else
    on_topic: dict[str, Alert] = {}
    for record in read_topic(settings.kafka_bootstrap_servers, settings.topics.alerts, 3):
        content = tuple(record[k] for k in ALERT_FIELDS)
        if on_topic.setdefault(record["alert_id"], content) != content:
            result.alerts_extra += 1
            result.details.append(f"alert {record['alert_id']} re-emitted with different content")
    published = set(on_topic.values())
    result.alerts_missing += len(want.alerts - published)
    result.alerts_extra += len(published - want.alerts)
    result.details += [f"alert not on the topic: {a}" for a in sorted(want.alerts - published)[:3]]
    result.dead_letters = len(read_topic(settings.kafka_bootstrap_servers, settings.topics.dlq, 2))


def _diff(
    want: dict[Any, tuple[int, ...]],
    got: dict[Any, tuple[int, ...]],
    columns: tuple[str, ...],
    what: str,
    details: list[str],
) -> int:
    wrong = [key for key in want.keys() | got.keys() if want.get(key) != got.get(key)]
    for key in sorted(wrong, key=str)[:3]:
        details.append(f"{what} row {key} {columns}: expected {want.get(key)}, got {got.get(key)}")
    return len(wrong)


def run_schedule(cluster: Cluster, schedule: Schedule) -> Result:
    workdir = cluster.workdir / f"seed-{schedule.seed}-{uuid.uuid4().hex[:4]}"
    result = Run(cluster, schedule, workdir).execute()
    if result.ok and not os.environ.get("CHAOS_KEEP"):
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        result.details.append(f"logs: {workdir}")
    return result
