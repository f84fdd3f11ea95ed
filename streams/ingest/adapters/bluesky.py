"""Bluesky: Jetstream commit events (JSON), forwarded by a bridge.

Jetstream is a WebSocket stream a consumer subscribes to, not a webhook, and it carries no signature
(it strips the repository commit signatures of the AT Protocol firehose). So the trust boundary is the
bridge that subscribes to Jetstream (e.g. with ``wantedCollections`` for the four collections below)
and POSTs events here — one event or a JSON array — signed like the generic endpoint:
``X-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>`` with the secret named ``bluesky``.
**Out of scope:** the bridge itself, and verifying AT Protocol commit signatures.

An event is ``{"did", "time_us", "kind": "commit", "commit": {"operation", "collection", "rkey",
"record"}}``; the brand account is the repository named in the record's subject:

==========================================  ========  ===============================================
record (operation ``create``)               type      account / post
==========================================  ========  ===============================================
``app.bsky.feed.like``                      like      DID of ``subject.uri`` / ``subject.uri``
``app.bsky.feed.repost``                    share     DID of ``subject.uri`` / ``subject.uri``
``app.bsky.feed.post`` with ``reply``       comment   DID of ``reply.parent.uri`` / that URI
``app.bsky.feed.post`` quoting (``embed``)  share     DID of the quoted URI / that URI, with text
``app.bsky.graph.follow``                   follow    ``subject`` (a DID)
==========================================  ========  ===============================================

``event_id`` is ``bsky:`` + the AT URI of the actor's record (``at://<did>/<collection>/<rkey>``),
unique and stable across redeliveries. Event time is ``time_us`` (when Jetstream saw the commit; the
record's ``createdAt`` is client-claimed) and ``createdAt`` only when ``time_us`` is missing.

Ignored: ``update`` and ``delete`` operations — an unfollow is the deletion of the follow record,
whose subject a delete event does not carry, so it cannot be mapped without remembering every follow
record (out of scope) —, non-commit kinds (``identity``, ``account``), other collections, plain posts,
and actions on one's own posts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from streams.ingest.adapters.base import (
    Context,
    Ignored,
    JsonAdapter,
    Mapped,
    Unmappable,
    build,
    first_time,
    obj,
    stable_id,
    verify_hex_hmac,
)

SIGNATURE_HEADER = "X-Signature-256"

_AT_URI = re.compile(r"^at://([^/\s]+)/([^/\s]+)/([^/\s]+)$")
LIKE, REPOST, POST, FOLLOW = (
    "app.bsky.feed.like",
    "app.bsky.feed.repost",
    "app.bsky.feed.post",
    "app.bsky.graph.follow",
)
_QUOTE_EMBEDS = ("app.bsky.embed.record", "app.bsky.embed.recordWithMedia")


def repo_of(uri: object) -> str | None:
    """The repository (DID) an ``at://`` URI points into."""
    if type(uri) is not str:
        return None
    match = _AT_URI.match(uri)
    return match.group(1) if match else None


def _quoted_uri(record: dict[str, Any]) -> object:
    embed = obj(record.get("embed"))
    if embed.get("$type") not in _QUOTE_EMBEDS:
        return None
    inner = obj(embed.get("record"))
    # recordWithMedia nests the strong ref one level deeper: embed.record.record.uri
    return obj(inner.get("record")).get("uri") if "record" in inner else inner.get("uri")


class BlueskyAdapter(JsonAdapter):
    name = "bluesky"
    # event_id prefixes and platforms only this adapter emits (the generic route may not use them)
    id_prefixes: tuple[str, ...] = ("bsky",)
    emits_platforms: tuple[str, ...] = ("bluesky",)

    def verify(self, headers: Mapping[str, str], raw_body: bytes, secret: str, now_ms: int) -> None:
        verify_hex_hmac(headers, raw_body, secret, SIGNATURE_HEADER)

    def map(self, payload: Any, context: Context) -> list[Mapped]:
        events = payload if type(payload) is list else [payload]
        return [self._event(obj(event), event, context) for event in events]

    def _event(self, event: dict[str, Any], original: Any, context: Context) -> Mapped:
        if event.get("kind") != "commit":
            if event.get("kind") in ("identity", "account"):
                return Ignored(f"kind {event.get('kind')}")
            return Unmappable("unmappable", "bluesky: expected a Jetstream event with kind", original)
        actor, commit = event.get("did"), obj(event.get("commit"))
        collection, rkey = commit.get("collection"), commit.get("rkey")
        if type(actor) is not str or type(collection) is not str or type(rkey) is not str:
            return Unmappable("unmappable", "bluesky commit without did, collection or rkey", original)
        if commit.get("operation") != "create":
            return Ignored(f"operation {commit.get('operation')}")
        record = obj(commit.get("record"))
        text: str | None = None
        if collection in (LIKE, REPOST):
            post_id = obj(record.get("subject")).get("uri")
            event_type, account = ("like" if collection == LIKE else "share"), repo_of(post_id)
        elif collection == FOLLOW:
            event_type, account, post_id = "follow", record.get("subject"), None
        elif collection == POST:
            text = record.get("text") if type(record.get("text")) is str else None
            parent = obj(obj(record.get("reply")).get("parent")).get("uri")
            quoted = _quoted_uri(record)
            if parent is not None:
                event_type, post_id = "comment", parent
            elif quoted is not None:
                event_type, post_id = "share", quoted
            else:
                return Ignored("post that is not a reply or a quote")
            account = repo_of(post_id)
        else:
            return Ignored(f"collection {collection}")
        if type(account) is not str or (post_id is not None and type(post_id) is not str):
            return Unmappable("unmappable", f"bluesky {collection} without a valid subject", original)
        if account == actor:
            return Ignored("action on one's own post")
        time_us = event.get("time_us")
        occurred = (time_us // 1000 if type(time_us) is int and time_us > 0 else None) or first_time(
            record.get("createdAt")
        )
        return build(
            event_id=stable_id("bsky", f"at://{actor}/{collection}/{rkey}"),
            type=event_type,
            platform="bluesky",
            account_id=account,
            actor_id=actor,
            post_id=post_id if type(post_id) is str else None,
            text=text,
            occurred_at_ms=occurred or context.received_at_ms,
            original=original,
        )


def create(settings: Any) -> BlueskyAdapter:
    return BlueskyAdapter()
