"""X (Twitter) Account Activity API webhooks.

Handshake (CRC): ``GET ?crc_token=T`` → ``{"response_token": "sha256=<base64 HMAC-SHA256(consumer
secret, T)>"}``. Signature: ``x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256(consumer
secret, raw body)>`` (the secret named ``x`` in ``ENGAGE_WEBHOOK_SECRETS``). X signs no timestamp.

A delivery concerns one subscribed account, ``for_user_id``. Mapping:

=============================================  ========  ==========================================
activity                                       type      event_id
=============================================  ========  ==========================================
``favorite_events`` on the account's post      like      ``x:fav:<favorited status id>:<user id>``
``tweet_create_events`` replying to it         comment   ``x:tweet:<id>``
``tweet_create_events`` quoting its post       share     ``x:tweet:<id>`` (text = the commentary)
``tweet_create_events`` retweeting its post    share     ``x:tweet:<id>`` (no text)
``follow_events`` type follow / unfollow       follow /  ``x:<type>:<source>:<target>:<created ms>``
                                               unfollow
=============================================  ========  ==========================================

A reply that also quotes counts as the comment. Leading ``@mentions`` are stripped from reply text
(X prepends the handles of the conversation; they are not words the follower wrote). Ignored: the
account's own posts, likes and follows, mentions that are not replies, and every other event kind
(DMs, blocks, mutes, deletes, typing indicators).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from streams.ingest.adapters.base import (
    Context,
    HandshakeReply,
    Ignored,
    JsonAdapter,
    Mapped,
    Unmappable,
    build,
    check_prefixed,
    first_time,
    hmac_sha256_b64,
    id_str,
    items,
    obj,
    require_signature,
    stable_id,
)

SIGNATURE_HEADER = "x-twitter-webhooks-signature"
_LEADING_MENTIONS = re.compile(r"^(?:\s*@\w{1,50})+\s*")
# X's CRC tokens are random base64 (url-safe or not) strings; nothing else is answered (see handshake).
_CRC_TOKEN = re.compile(r"[A-Za-z0-9+/_=-]{8,128}")
_HANDLED = frozenset(
    {
        "for_user_id",
        "user_has_blocked",
        "is_blocked_by",
        "users",  # lookup tables that accompany DM events, not events
        "apps",
        "favorite_events",
        "tweet_create_events",
        "follow_events",
        "unfollow_events",
    }
)


def _user_id(user: object) -> str | None:
    user = obj(user)
    return id_str(user.get("id_str")) or id_str(user.get("id"))


def _tweet_id(tweet: object) -> str | None:
    tweet = obj(tweet)
    return id_str(tweet.get("id_str")) or id_str(tweet.get("id"))


def _tweet_text(tweet: dict[str, Any]) -> str | None:
    for candidate in (
        obj(tweet.get("extended_tweet")).get("full_text"),
        tweet.get("full_text"),
        tweet.get("text"),
    ):
        if type(candidate) is str:
            return candidate
    return None


def _created_at(value: object) -> int | None:
    """X's ``created_at`` (``Wed Oct 10 20:19:24 +0000 2018``) → epoch ms."""
    if type(value) is not str:
        return None
    try:
        return round(datetime.strptime(value, "%a %b %d %H:%M:%S %z %Y").timestamp() * 1000)
    except ValueError:
        return None


def _time(event: dict[str, Any], fallback_ms: int) -> int:
    return first_time(event.get("timestamp_ms")) or _created_at(event.get("created_at")) or fallback_ms


class XAdapter(JsonAdapter):
    name = "x"
    # event_id prefixes and platforms only this adapter emits (the generic route may not use them)
    id_prefixes: tuple[str, ...] = ("x",)
    emits_platforms: tuple[str, ...] = ("x",)

    def verify(self, headers: Mapping[str, str], raw_body: bytes, secret: str, now_ms: int) -> None:
        provided = require_signature(headers, SIGNATURE_HEADER)
        check_prefixed(provided, hmac_sha256_b64(secret, raw_body))

    def handshake(self, query: Mapping[str, str], secret: str) -> HandshakeReply | None:
        token = query.get("crc_token", "")
        if not _CRC_TOKEN.fullmatch(token) or token.isdigit():
            # The answer is HMAC(secret, token), which is also the signature of a POST whose body is the
            # token: only tokens shaped like X's (base64 alphabet, never JSON — a digit-only token
            # would parse as a number) are answered, so the oracle cannot sign a payload.
            return HandshakeReply(400, b"expected crc_token")
        body = orjson.dumps({"response_token": "sha256=" + hmac_sha256_b64(secret, token.encode())})
        return HandshakeReply(200, body, "application/json")

    def map(self, payload: Any, context: Context) -> list[Mapped]:
        payload = obj(payload)
        account = id_str(payload.get("for_user_id"))
        if account is None:
            return [Unmappable("unmappable", "x: payload without for_user_id", payload)]
        fallback = context.received_at_ms
        out: list[Mapped] = []
        for event in items(payload.get("favorite_events")):
            out.append(_favorite(account, obj(event), fallback))
        for tweet in items(payload.get("tweet_create_events")):
            out.append(_tweet(account, obj(tweet), fallback))
        for key, default in (("follow_events", "follow"), ("unfollow_events", "unfollow")):
            for event in items(payload.get(key)):
                out.append(_follow(account, obj(event), default))
        out.extend(Ignored(f"event kind {key}") for key in payload if key not in _HANDLED)
        return out


def _favorite(account: str, event: dict[str, Any], fallback_ms: int) -> Mapped:
    status = obj(event.get("favorited_status"))
    status_id, owner, actor = _tweet_id(status), _user_id(status.get("user")), _user_id(event.get("user"))
    if status_id is None or actor is None:
        return Unmappable("unmappable", "x favorite without favorited_status.id_str or user.id_str", event)
    if actor == account or (owner is not None and owner != account):
        return Ignored("account's own like")
    return build(
        event_id=stable_id("x:fav", status_id, actor),
        type="like",
        platform="x",
        account_id=account,
        actor_id=actor,
        post_id=status_id,
        text=None,
        occurred_at_ms=_time(event, fallback_ms),
        original=event,
    )


def _tweet(account: str, tweet: dict[str, Any], fallback_ms: int) -> Mapped:
    tweet_id, author = _tweet_id(tweet), _user_id(tweet.get("user"))
    if tweet_id is None or author is None:
        return Unmappable("unmappable", "x tweet without id_str or user.id_str", tweet)
    if author == account:
        return Ignored("account's own post")
    retweeted, quoted = obj(tweet.get("retweeted_status")), obj(tweet.get("quoted_status"))
    text = _tweet_text(tweet)
    if retweeted:
        if _user_id(retweeted.get("user")) != account:
            return Ignored("retweet of another account's post")
        event_type, post_id, text = "share", _tweet_id(retweeted), None
    elif id_str(tweet.get("in_reply_to_user_id_str")) == account:
        event_type, post_id = "comment", id_str(tweet.get("in_reply_to_status_id_str"))
        text = _LEADING_MENTIONS.sub("", text) if text is not None else None
    elif quoted and _user_id(quoted.get("user")) == account:
        event_type, post_id = "share", _tweet_id(quoted)
    else:
        return Ignored("mention that is not a reply, quote or retweet")
    return build(
        event_id=stable_id("x:tweet", tweet_id),
        type=event_type,
        platform="x",
        account_id=account,
        actor_id=author,
        post_id=post_id,
        text=text,
        occurred_at_ms=_time(tweet, fallback_ms),
        original=tweet,
    )


def _follow(account: str, event: dict[str, Any], default_type: str) -> Mapped:
    kind = event.get("type", default_type)
    source, target = _user_id(event.get("source")), _user_id(event.get("target"))
    created = first_time(event.get("created_timestamp"))
    if kind not in ("follow", "unfollow") or source is None or target is None or created is None:
        return Unmappable("unmappable", "x follow event without type, source.id, target.id or time", event)
    if target != account:
        return Ignored(f"account's own {kind}")
    return build(
        event_id=stable_id(f"x:{kind}", source, target, str(created)),
        type=kind,
        platform="x",
        account_id=account,
        actor_id=source,
        post_id=None,
        text=None,
        occurred_at_ms=created,
        original=event,
    )


def create(settings: Any) -> XAdapter:
    return XAdapter()
