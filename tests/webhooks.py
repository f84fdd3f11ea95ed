"""Shared by the ingest tests (unit, integration, bench): fixtures on disk, settings, signing."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from multidict import CIMultiDict

from streams.events import Interaction, decode_object
from streams.settings import Settings

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "webhooks"
NOW_MS = 1_795_343_400_000  # 2026-11-22T10:30:00Z, the fixed clock of the tests

SECRETS = {
    "generic": "generic-secret-0b9f",
    "crm": "crm-secret-77aa",
    "meta": "meta-app-secret-5c1e",
    "x": "x-consumer-secret-93d2",
    "mastodon": "mastodon-relay-secret-2e4f",
    "bluesky": "bluesky-bridge-secret-8a61",
}
VERIFY_TOKEN = "meta-verify-token-4d3c"
# The route each fixture folder posts to; mastodon inboxes take the account in the path.
ROUTES = {"generic": "generic", "meta": "meta", "x": "x", "mastodon": "mastodon", "bluesky": "bluesky"}


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "webhook_secrets": dict(SECRETS),
        "meta_verify_token": VERIFY_TOKEN,
        "topic_partitions": 8,
        "ingest_ack_timeout_ms": 2000,
        # The fixtures' generic senders sign no timestamp: a deployment that opted out (the default,
        # which requires one, is tested in tests/unit/ingest/test_hostile.py).
        "webhook_untimed_sources": frozenset({"generic", "crm"}),
    }
    values.update(overrides)
    return Settings(**values)


def signature_headers(platform: str, body: bytes, secret: str | None = None) -> CIMultiDict[str]:
    """Sign ``body`` the way ``platform`` does, written independently of the adapters."""
    key = (secret if secret is not None else SECRETS[platform]).encode()
    digest = hmac.new(key, body, hashlib.sha256)
    if platform == "meta":
        return CIMultiDict({"X-Hub-Signature-256": "sha256=" + digest.hexdigest()})
    if platform == "x":
        return CIMultiDict(
            {"x-twitter-webhooks-signature": "sha256=" + base64.b64encode(digest.digest()).decode()}
        )
    return CIMultiDict({"X-Signature-256": "sha256=" + digest.hexdigest()})


@dataclass(frozen=True)
class Case:
    """One payload fixture and what it must map to."""

    platform: str
    name: str
    body: bytes
    events: list[Interaction]
    ignored: int
    dead_lettered: int
    account: str | None
    received_at: int

    @property
    def id(self) -> str:
        return f"{self.platform}/{self.name}"


def cases() -> list[Case]:
    out: list[Case] = []
    for expected_path in sorted(FIXTURES.glob("*/*.expected.json")):
        stem = expected_path.name.removesuffix(".expected.json")
        body_path = next(p for p in expected_path.parent.iterdir() if p.stem == stem and p != expected_path)
        expected = orjson.loads(expected_path.read_bytes())
        out.append(
            Case(
                platform=expected_path.parent.name,
                name=stem,
                body=body_path.read_bytes(),
                events=[decode_object(e) for e in expected["events"]],
                ignored=expected["ignored"],
                dead_lettered=expected["dead_lettered"],
                account=expected.get("account"),
                received_at=expected.get("received_at", NOW_MS),
            )
        )
    return out


class ServerThread:
    """An app served on a loopback port by an event loop in a background thread (for sync clients)."""

    def __init__(self, make_app: Any) -> None:
        import asyncio
        import threading

        from aiohttp import web

        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

        async def start() -> tuple[web.AppRunner, int]:
            runner = web.AppRunner(make_app(), access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            return runner, runner.addresses[0][1]

        self._runner, self.port = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def close(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()
