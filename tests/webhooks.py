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
