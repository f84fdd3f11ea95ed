"""One demo session on a running pipeline: wait until it is ready, send, watch, drain, report.

The processes are the orchestrator's business; this is the asyncio part that runs beside them: the
:class:`~streams.demo.sender.WebhookSender`, the ``/metrics`` probes, the flags/alerts
:class:`~streams.demo.probes.TopicFollower` and the :class:`~streams.demo.screen.Screen`, refreshed
about twice a second. It ends at ``duration_s`` or on SIGINT/SIGTERM; then the sender stops and the
worker gets time to process what ingest accepted, as long as it makes progress (at most
``drain_max_s``; a second Ctrl-C skips that).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp

from streams.demo.board import Board, PipelineNumbers, Rates, pipeline_numbers
from streams.demo.generator import TrafficGenerator
from streams.demo.pacing import Pacer
from streams.demo.probes import MetricsProbe, TopicFollower
from streams.demo.screen import Screen, View
from streams.demo.sender import AiohttpTransport, SendStats, WebhookSender
from streams.errors import EngageError
from streams.kafka_security import PLAINTEXT, KafkaSecurity


class NotReady(EngageError):
    """Raised by the demo session when the worker or the ingest service did not answer ready within the
    plan's ``ready_timeout_s``. The demo stops its children and ``engage`` prints the message and exits 1."""


@dataclass(frozen=True)
class SessionPlan:
    generator: TrafficGenerator
    followers: Mapping[str, int]  # per account: the audience model's followers (ratio denominator)
    secrets: Mapping[str, str]
    rate: float
    time_scale: float
    duration_s: float | None
    bootstrap: str
    flags_topic: str
    alerts_topic: str
    ingest_url: str
    ingest_metrics: str
    worker_metrics: str
    concurrency: int = 16
    step_s: float = 0.2
    refresh_s: float = 0.5
    worker_log: str = "the worker's log"
    ready_timeout_s: float = 180.0
    drain_max_s: float = 120.0
    stall_s: float = 15.0
    top_accounts: int = 8
    kafka_security: KafkaSecurity = PLAINTEXT


@dataclass(frozen=True)
class Outcome:
    elapsed_s: float  # seconds of traffic
    send: SendStats
    pipeline: PipelineNumbers
    interrupted: bool  # ended by a signal rather than by the duration
    drained: bool  # the worker had processed everything ingest accepted before the stop


class Session:
    def __init__(
        self,
        plan: SessionPlan,
        screen: Screen,
        check_children: Callable[[], None],
        limit: Callable[[], str | None] = lambda: None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plan = plan
        self.screen = screen
        self._check_children = check_children
        self._limit = limit
        self.stopped_by: str | None = None  # the reason ``limit`` gave, when it ended the traffic
        self._clock = clock
        self.board = Board(
            (a.account_id, a.platform, plan.followers.get(a.account_id, 0)) for a in plan.generator.accounts
        )
        self._rates = Rates(window_s=5.0)  # the worker processes in bursts
        self._stop = asyncio.Event()
        self._hurry = asyncio.Event()
        self._interrupted = False
        self._numbers = PipelineNumbers()
        self._started: float | None = None
        self._status = "starting"
        self._last_handled = 0
        self._progress_at = clock()

    def _on_signal(self) -> None:
        if self._stop.is_set():
            self._hurry.set()
            self.screen.say("second interrupt: skipping the drain")
        self._interrupted = True
        self._stop.set()

    async def run(self) -> Outcome:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal)
        try:
            async with aiohttp.ClientSession() as http:
                return await self._run(http)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    async def _run(self, http: aiohttp.ClientSession) -> Outcome:
        plan = self.plan
        worker = MetricsProbe(http, plan.worker_metrics)
        ingest = MetricsProbe(http, plan.ingest_metrics)
        if not await self._wait_ready(worker, ingest):
            return self._outcome(drained=False)
        follower = TopicFollower(
            plan.bootstrap,
            {plan.flags_topic: self.board.add_flag, plan.alerts_topic: self.board.add_alert},
            plan.kafka_security,
        )
        follow_stop = asyncio.Event()
        follow_task = asyncio.create_task(follower.run(follow_stop))
        pacer = Pacer(plan.rate * 2.0, plan.time_scale)  # the daily rhythm peaks at ~1.6x the mean
        step = max(1, round(plan.rate * plan.step_s))
        async with AiohttpTransport(plan.ingest_url, concurrency=plan.concurrency) as transport:
            sender = WebhookSender(
                plan.generator, plan.secrets, transport, pacer, step_events=step, concurrency=plan.concurrency
            )
            self._started = self._clock()
            self._status = "running"
            send_task = asyncio.create_task(sender.run())
            try:
                while not self._stop.is_set():
                    await self._refresh(worker, ingest, sender.stats)
                    if plan.duration_s is not None and self._elapsed() >= plan.duration_s:
                        break
                    self.stopped_by = self._limit()
                    if self.stopped_by is not None:
                        self.screen.say(self.stopped_by)
                        break
                    if send_task.done():
                        send_task.result()  # the stream is endless: ending means an error
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), plan.refresh_s)
            finally:
                self._status = "stopping: sender"
                sender.stop()
                await send_task
            elapsed = self._elapsed()
            drained = await self._drain(worker, ingest, sender.stats)
        follow_stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(follow_task, 5.0)
        self._status = "stopping: ingest, worker, broker"
        self.screen.show(self._view(sender.stats), force=True)
        return Outcome(elapsed, sender.stats.copy(), self._numbers, self._interrupted, drained)

    def _elapsed(self) -> float:
        return 0.0 if self._started is None else self._clock() - self._started

    async def _wait_ready(self, worker: MetricsProbe, ingest: MetricsProbe) -> bool:
        self.screen.say("waiting for the worker and the ingest service to be ready…")
        deadline = self._clock() + self.plan.ready_timeout_s
        while not self._stop.is_set():
            self._check_children()
            # Ingest answers /readyz on its webhook port; its /metrics has a port of its own.
            if await worker.ready() and await ingest.ready(f"{self.plan.ingest_url}/readyz"):
                self.screen.say("pipeline ready; sending traffic")
                return True
            if self._clock() > deadline:
                raise NotReady(f"the pipeline was not ready within {self.plan.ready_timeout_s:.0f}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.5)
        return False

    async def _refresh(self, worker: MetricsProbe, ingest: MetricsProbe, stats: SendStats) -> None:
        self._check_children()
        w, i = await asyncio.gather(worker.scrape(), ingest.scrape())
        self._numbers = pipeline_numbers(w, i)
        self._rates.add(
            self._clock(),
            {
                "sent": stats.events_sent,
                "accepted": self._numbers.accepted,
                "processed": self._numbers.handled,
            },
        )
        self.screen.show(self._view(stats))

    async def _drain(self, worker: MetricsProbe, ingest: MetricsProbe, stats: SendStats) -> bool:
        """Let the worker process what ingest accepted, while it makes progress (a worker stopped
        with a backlog has more to flush); True when it caught up."""
        self._status = "stopping: the worker catches up (Ctrl-C again to skip)"
        deadline = self._clock() + self.plan.drain_max_s
        progress_at, handled = self._clock(), -1
        while not self._hurry.is_set():
            await self._refresh(worker, ingest, stats)
            n = self._numbers
            if n.worker_up and n.ingest_up and n.handled >= n.accepted:
                return True
            now = self._clock()
            if n.handled > handled:
                progress_at, handled = now, n.handled
            if now > deadline or now - progress_at > self.plan.stall_s:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), self.plan.refresh_s)
        return False

    def _notes(self) -> list[str]:
        """Warnings for the screen: a worker that stopped making progress with work waiting."""
        n, now = self._numbers, self._clock()
        if n.handled != self._last_handled or n.handled >= n.accepted:
            self._last_handled, self._progress_at = n.handled, now
            return []
        idle = now - self._progress_at
        if idle < self.plan.stall_s:
            return []
        return [
            f"the worker has processed nothing for {idle:.0f}s with {n.accepted - n.handled:,} events "
            f"waiting: see {self.plan.worker_log}"
        ]

    def _view(self, stats: SendStats) -> View:
        board = self.board
        return View(
            elapsed_s=self._elapsed(),
            send=stats.copy(),
            pipeline=self._numbers,
            rates={name: self._rates.rate(name) for name in ("sent", "accepted", "processed")},
            rows=board.rows(self.plan.top_accounts),
            transitions=list(board.transitions),
            alerts=list(board.alerts),
            open_alerts=list(board.open_alerts.values()),
            status=self._status,
            notes=self._notes(),
            alerts_total=board.alerts_total,
        )

    def _outcome(self, *, drained: bool) -> Outcome:
        return Outcome(self._elapsed(), SendStats(), self._numbers, self._interrupted, drained)
