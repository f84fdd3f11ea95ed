"""The webhook sender against an in-process transport (the HTTP edge's twin): counting, retries, limits."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import orjson
import pytest

from streams.demo.generator import GeneratorConfig, TrafficGenerator
from streams.demo.pacing import Pacer
from streams.demo.sender import SendStats, TransportError, WebhookSender, parse_retry_after, status_class
from streams.demo.webhooks import GENERIC_SIGNATURE, META_SIGNATURE, X_SIGNATURE, hex_signature

SECRETS = {"generic": "g-secret", "meta": "m-secret", "x": "x-secret"}
EVENTS = TrafficGenerator(GeneratorConfig.demo(3)).take(600)


class Recorder:
    """Answers from a script (status per call, default 200) and records what it got."""

    def __init__(self, script: list[int | Exception] | None = None, delay_s: float = 0.0) -> None:
        self.script = list(script or [])
        self.delay_s = delay_s
        self.calls: list[tuple[str, dict[str, str], bytes]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def post(self, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, float | None]:
        self.calls.append((path, dict(headers), body))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        answer = self.script.pop(0) if self.script else 200
        if isinstance(answer, Exception):
            raise answer
        return answer, (2.5 if answer == 503 else None)


class Paused(WebhookSender):
    """Records the pauses (pacing and retry waits) instead of waiting them out."""

    def __init__(self, *args: object, clock: list[float] | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.pauses: list[float] = []
        self.clock = clock

    async def _pause(self, seconds: float) -> bool:
        self.pauses.append(seconds)
        if self.clock is not None:
            self.clock[0] += seconds
        return False


def run(sender: WebhookSender, limit: int | None = None) -> SendStats:
    return asyncio.run(sender.run(limit))


def unpaced() -> Pacer:
    return Pacer(None, None)


def test_every_event_travels_signed_once() -> None:
    transport = Recorder()
    stats = run(WebhookSender(EVENTS, SECRETS, transport, unpaced(), step_events=100))
    assert stats.events_generated == stats.events_sent == len(EVENTS)
    assert stats.events_failed == stats.events_rejected == stats.retries == 0
    assert stats.status_classes["2xx"] == stats.requests == len(transport.calls)
    paths = {path for path, _, _ in transport.calls}
    assert paths == {"/v1/events", "/v1/webhooks/meta", "/v1/webhooks/x"}  # the demo mix has all three
    for path, headers, body in transport.calls:
        if path == "/v1/events":
            assert headers[GENERIC_SIGNATURE] == hex_signature("g-secret", body)
        elif path == "/v1/webhooks/meta":
            assert headers[META_SIGNATURE] == hex_signature("m-secret", body)
        else:
            assert X_SIGNATURE in headers
    generic_ids = {e["event_id"] for p, _, b in transport.calls if p == "/v1/events" for e in orjson.loads(b)}
    assert generic_ids <= {event.event_id for event in EVENTS}
    assert stats.event_time_ms == max(event.occurred_at_ms for event in EVENTS)


def test_503_is_retried_after_retry_after_and_4xx_is_not() -> None:
    transport = Recorder([503, 503, 401])
    sender = Paused(EVENTS[:1], SECRETS, transport, unpaced(), step_events=1)
    stats = run(sender)
    assert sender.pauses == [2.5, 2.5]  # the Retry-After the transport reported, twice
    assert stats.retries == 2
    assert stats.status_classes == {"2xx": 0, "4xx": 1, "5xx": 2}
    assert stats.events_rejected == 1 and stats.events_sent == 0 and stats.events_failed == 0


def test_connection_errors_back_off_then_give_up() -> None:
    transport = Recorder([TransportError("refused")] * 3)
    sender = Paused(EVENTS[:1], SECRETS, transport, unpaced(), step_events=1, max_attempts=3)
    stats = run(sender)
    assert sender.pauses == [0.5, 1.0]  # backoff grows with the attempt; no sleep after the last one
    assert stats.connection_errors == 3 and stats.requests == 0
    assert stats.events_failed == 1


def test_concurrency_is_bounded() -> None:
    transport = Recorder(delay_s=0.01)
    sender = WebhookSender(EVENTS, SECRETS, transport, unpaced(), step_events=50, concurrency=3)
    stats = run(sender)
    assert transport.max_in_flight == 3
    assert stats.in_flight == 0 and stats.events_sent == len(EVENTS)


def test_stop_ends_an_endless_stream_and_skips_retries() -> None:
    async def scenario() -> tuple[SendStats, Recorder]:
        transport = Recorder([503] * 1000, delay_s=0.001)
        sender = WebhookSender(
            iter(TrafficGenerator(GeneratorConfig.demo(1))),
            SECRETS,
            transport,
            Pacer(20_000, None),
            step_events=100,
        )
        task = asyncio.create_task(sender.run())
        await asyncio.sleep(0.05)
        sender.stop()
        return await asyncio.wait_for(task, 5.0), transport

    stats, transport = asyncio.run(scenario())
    assert stats.events_generated > 0
    assert stats.events_failed == stats.events_generated  # every request got a 503, none retried for ever
    assert stats.retries < len(transport.calls)


def test_the_pacer_decides_when_steps_go() -> None:
    clock = [0.0]
    pacer = Pacer(1000, None, clock=lambda: clock[0])
    sender = Paused(EVENTS[:300], SECRETS, Recorder(), pacer, step_events=100, clock=clock)
    stats = run(sender)
    # 100 events per step at 1000/s: the first step at once, then one every 0.1 s.
    assert sender.pauses == pytest.approx([0.1, 0.1])
    assert stats.behind_s == 0.0 and stats.events_sent == 300


def test_helpers() -> None:
    assert parse_retry_after("5") == 5.0 and parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert [status_class(s) for s in (200, 202, 404, 503, 99)] == ["2xx", "2xx", "4xx", "5xx", "other"]
    with pytest.raises(ValueError):
        WebhookSender(EVENTS, SECRETS, Recorder(), unpaced(), step_events=0)
