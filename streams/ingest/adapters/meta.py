"""Meta Graph API webhooks: Facebook Page ``feed`` changes and Instagram ``comments``.

Handshake: Meta verifies the callback with ``GET ?hub.mode=subscribe&hub.verify_token=...&
hub.challenge=...``; the challenge is echoed when the token equals ``ENGAGE_META_VERIFY_TOKEN``.
Signature: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`` (the secret named
``meta`` in ``ENGAGE_WEBHOOK_SECRETS``). Meta signs no timestamp, so there is no replay window to
enforce; redeliveries are harmless because event ids are derived from Meta's ids.

Mapping (``object: page`` → platform ``facebook``; ``object: instagram`` → ``instagram``):

==================================  ============  ==================================================
change                              type          event_id
==================================  ============  ==================================================
feed ``item: comment``, verb add    comment       ``fb:comment:<comment_id>``
feed ``item: share``, verb add      share         ``fb:share:<share_id or post_id>``
feed ``item: reaction|like``, add   like          ``fb:like:<comment_id or post_id>:<actor>``
instagram ``comments``              comment       ``ig:comment:<comment id>``
==================================  ============  ==================================================

Reactions and likes share one id scheme on purpose: Meta may announce one tap as both a ``like`` and
a ``reaction`` change, and the shared id lets downstream deduplication keep one.

Deliberately ignored (counted as ``outcome="ignored"``, never stored): verbs other than ``add``
(``remove``, ``hide``, ``edited``, ``edit``: a removal does not undo a conversation that happened, an
edit is not a new one), the page's own activity (actor = page), feed items that are not interactions
with a post (``status``, ``photo``, ``video``, ``post`` by visitors, ratings, ...), and fields other
than ``feed`` / ``comments`` / ``live_comments``. Instagram comments carry no creation time; the
entry's ``time`` (when Meta sent it) is used, or the receive time.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from streams.ingest.adapters.base import (
    Context,
    HandshakeReply,
    Ignored,
    JsonAdapter,
    Mapped,
    Unmappable,
    build,
    first_time,
    id_str,
    obj,
    stable_id,
    verify_hex_hmac,
)

SIGNATURE_HEADER = "X-Hub-Signature-256"
_MAX_CHALLENGE = 256


class MetaAdapter(JsonAdapter):
    name = "meta"
    # event_id prefixes and platforms only this adapter emits (the generic route may not use them)
    id_prefixes: tuple[str, ...] = ("fb", "ig")
    emits_platforms: tuple[str, ...] = ("facebook", "instagram")

    def __init__(self, verify_token: str) -> None:
        self._verify_token = verify_token

    def verify(self, headers: Mapping[str, str], raw_body: bytes, secret: str, now_ms: int) -> None:
        verify_hex_hmac(headers, raw_body, secret, SIGNATURE_HEADER)

    def handshake(self, query: Mapping[str, str], secret: str) -> HandshakeReply | None:
        token = query.get("hub.verify_token", "")
        challenge = query.get("hub.challenge", "")
        if query.get("hub.mode") != "subscribe" or not challenge or len(challenge) > _MAX_CHALLENGE:
            return HandshakeReply(400, b"expected hub.mode=subscribe with hub.challenge")
        if not self._verify_token or not hmac.compare_digest(token.encode(), self._verify_token.encode()):
            return HandshakeReply(403, b"verify token mismatch")
        return HandshakeReply(200, challenge.encode())

    def map(self, payload: Any, context: Context) -> list[Mapped]:
        deliveries = payload if type(payload) is list else [payload]
        out: list[Mapped] = []
        for delivery in deliveries:
            kind = obj(delivery).get("object")
            if kind not in ("page", "instagram") or type(obj(delivery).get("entry")) is not list:
                out.append(
                    Unmappable("unmappable", "meta: expected object page|instagram with entry[]", delivery)
                )
                continue
            for entry in delivery["entry"]:
                out.extend(self._entry(kind, obj(entry), context))
        return out

    def _entry(self, kind: str, entry: dict[str, Any], context: Context) -> list[Mapped]:
        account = id_str(entry.get("id"))
        changes = entry.get("changes")
        if changes is None and "field" in entry:  # Instagram examples inline a single change
            changes = [entry]
        if account is None or type(changes) is not list:
            if "messaging" in entry or "standby" in entry:
                return [Ignored("messaging")]
            return [Unmappable("unmappable", "meta: entry without id or changes[]", entry)]
        out: list[Mapped] = []
        for change in changes:
            change = obj(change)
            field, value = change.get("field"), obj(change.get("value"))
            fallback_ms = first_time(entry.get("time")) or context.received_at_ms
            if kind == "page" and field == "feed":
                out.append(_feed(account, value, fallback_ms, change))
            elif kind == "instagram" and field in ("comments", "live_comments"):
                out.append(_instagram_comment(account, value, fallback_ms, change))
            else:
                out.append(Ignored(f"field {field}"))
        return out


def _feed(page: str, value: dict[str, Any], fallback_ms: int, original: Any) -> Mapped:
    item, verb = value.get("item"), value.get("verb")
    if item not in ("comment", "share", "reaction", "like"):
        return Ignored(f"feed item {item}")
    if verb != "add":
        return Ignored(f"verb {verb}")
    actor = (
        id_str(obj(value.get("from")).get("id"))
        or id_str(value.get("sender_id"))
        or id_str(value.get("user_id"))
    )
    if actor == page:
        return Ignored("page's own activity")
    post_id = id_str(value.get("post_id"))
    occurred = first_time(value.get("created_time")) or fallback_ms
    text = value.get("message") if type(value.get("message")) is str else None
    if item == "comment":
        comment_id = id_str(value.get("comment_id"))
        if comment_id is None:
            return Unmappable("unmappable", "facebook comment without comment_id", original)
        event_type, event_id = "comment", stable_id("fb:comment", comment_id)
    elif item == "share":
        share_id = id_str(value.get("share_id")) or post_id
        if share_id is None:
            return Unmappable("unmappable", "facebook share without share_id or post_id", original)
        event_type, event_id = "share", stable_id("fb:share", share_id)
    else:
        target = id_str(value.get("comment_id")) or post_id or id_str(value.get("parent_id"))
        if target is None or actor is None:
            return Unmappable("unmappable", f"facebook {item} without post_id or actor", original)
        event_type, event_id, text = "like", stable_id("fb:like", target, actor), None
    return build(
        event_id=event_id,
        type=event_type,
        platform="facebook",
        account_id=page,
        actor_id=actor,
        post_id=post_id,
        text=text,
        occurred_at_ms=occurred,
        original=original,
    )


def _instagram_comment(account: str, value: dict[str, Any], fallback_ms: int, original: Any) -> Mapped:
    comment_id = id_str(value.get("id"))
    actor = id_str(obj(value.get("from")).get("id"))
    if comment_id is None:
        return Unmappable("unmappable", "instagram comment without id", original)
    if actor == account:
        return Ignored("account's own comment")
    text = value.get("text") if type(value.get("text")) is str else None
    return build(
        event_id=stable_id("ig:comment", comment_id),
        type="comment",
        platform="instagram",
        account_id=account,
        actor_id=actor,
        post_id=id_str(obj(value.get("media")).get("id")),
        text=text,
        occurred_at_ms=first_time(value.get("timestamp"), value.get("created_time")) or fallback_ms,
        original=original,
    )


def create(settings: Any) -> MetaAdapter:
    return MetaAdapter(settings.meta_verify_token)
