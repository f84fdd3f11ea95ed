"""Canonical events → signed webhook requests, as the platforms would send them to ``engage ingest``.

Pure: builds ``(method, path, headers, body)``; sending is the caller's business. Three sources,
named like their secrets in ``ENGAGE_WEBHOOK_SECRETS``:

- ``generic``: ``POST /v1/events``, a JSON array of canonical events,
  ``X-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>``.
- ``meta``: Facebook Page ``feed`` changes (``object: page``) and Instagram ``comments``
  (``object: instagram``), ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, body)>``.
- ``x``: Account Activity API deliveries for one ``for_user_id``,
  ``x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256(consumer secret, body)>``.

Which canonical events travel natively (the rest go through the generic endpoint, platform kept):

=========  =====================================  ==============================================
platform   native                                 generic fallback (no webhook for it)
=========  =====================================  ==============================================
facebook   like (reaction), comment, share        follow, unfollow (Page likes are not in ``feed``)
instagram  comment                                like, share, follow, unfollow
x          like, comment (reply), share (quote    —
           with text, retweet without), follow,
           unfollow
=========  =====================================  ==============================================

An event goes natively only when its ``event_id`` is the one the adapter derives from the payload
(:mod:`streams.demo.platform_ids`), so the adapter maps the payload back to the same canonical event;
anything else (a recorded stream with foreign ids, say) is sent through the generic endpoint.
Meta's timestamps have whole seconds, so native Meta events must have whole-second ``occurred_at``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from streams.demo import platform_ids as ids
from streams.errors import ConfigError
from streams.events import Interaction

SOURCES: Final = ("generic", "meta", "x")
DEFAULT_PATHS: Final[Mapping[str, str]] = {
    "generic": "/v1/events",
    "meta": "/v1/webhooks/meta",
    "x": "/v1/webhooks/x",
}
GENERIC_SIGNATURE: Final = "X-Signature-256"
META_SIGNATURE: Final = "X-Hub-Signature-256"
X_SIGNATURE: Final = "x-twitter-webhooks-signature"


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    source: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    events: tuple[Interaction, ...]  # what it carries, in body order


def hex_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def base64_signature(secret: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def source_for(event: Interaction) -> str:
    """``meta``, ``x`` or ``generic``: how this event can travel so that it maps back to itself."""
    platform, kind, eid = event.platform, event.type, event.event_id
    if platform == "facebook" and event.occurred_at_ms % 1000 == 0:
        if kind == "comment" and eid.startswith(ids.FB_COMMENT):
            return "meta"
        if kind == "share" and eid.startswith(ids.FB_SHARE):
            return "meta"
        if kind == "like" and eid == f"{ids.FB_LIKE}{event.post_id}:{event.actor_id}":
            return "meta"
    elif platform == "instagram" and event.occurred_at_ms % 1000 == 0:
        if kind == "comment" and eid.startswith(ids.IG_COMMENT) and event.post_id is not None:
            return "meta"
    elif platform == "x":
        # A reply's text travels behind "@handle " (the adapter strips it), so it must exist.
        tweeted = kind == "share" or (kind == "comment" and event.text is not None)
        if tweeted and eid.startswith(ids.X_TWEET) and event.post_id is not None:
            return "x"
        if kind == "like" and eid == f"{ids.X_FAV}{event.post_id}:{event.actor_id}":
            return "x"
        if kind in ("follow", "unfollow") and eid == (
            f"x:{kind}:{event.actor_id}:{event.account_id}:{event.occurred_at_ms}"
        ):
            return "x"
    return "generic"


def build_requests(
    events: Iterable[Interaction],
    secrets: Mapping[str, str],
    *,
    max_events: int = 100,
    paths: Mapping[str, str] = DEFAULT_PATHS,
) -> list[WebhookRequest]:
    """Signed requests carrying ``events``, at most ``max_events`` each.

    Generic requests take any events; a Meta request one ``object`` kind (page or instagram); an X
    request one account (``for_user_id``). Within a group the event order is kept.
    """
    groups: dict[tuple[str, str], list[Interaction]] = {}
    for event in events:
        source = source_for(event)
        if source == "meta":
            key = ("meta", "page" if event.platform == "facebook" else "instagram")
        elif source == "x":
            key = ("x", event.account_id)
        else:
            key = ("generic", "")
        groups.setdefault(key, []).append(event)
    requests: list[WebhookRequest] = []
    for (source, detail), group in groups.items():
        secret = secrets.get(source)
        if not secret:
            raise ConfigError(f"no webhook secret for source {source!r}")
        for start in range(0, len(group), max_events):
            chunk = group[start : start + max_events]
            if source == "meta":
                body = meta_body(detail, chunk)
                header = {META_SIGNATURE: hex_signature(secret, body)}
            elif source == "x":
                body = x_body(detail, chunk)
                header = {X_SIGNATURE: base64_signature(secret, body)}
            else:
                body = generic_body(chunk)
                header = {GENERIC_SIGNATURE: hex_signature(secret, body)}
            headers = {"Content-Type": "application/json", **header}
            requests.append(WebhookRequest(source, "POST", paths[source], headers, body, tuple(chunk)))
    return requests


# --- generic -----------------------------------------------------------------------------------------


def generic_body(events: Sequence[Interaction]) -> bytes:
    return orjson.dumps([event.to_dict() for event in events])


# --- Meta ---------------------------------------------------------------------------------------------


def _name(user_id: str) -> str:
    return f"fan{user_id[-6:]}"


def meta_body(kind: str, events: Sequence[Interaction]) -> bytes:
    """One Meta delivery: ``object: page`` (feed changes, one entry per page) or ``object:
    instagram`` (one entry per comment: its ``time`` is the comment's time, which IG omits)."""
    entries: list[dict[str, Any]] = []
    if kind == "instagram":
        for event in events:
            entries.append(
                {
                    "id": event.account_id,
                    "time": event.occurred_at_ms // 1000,
                    "changes": [{"field": "comments", "value": _instagram_comment(event)}],
                }
            )
    else:
        by_page: dict[str, dict[str, Any]] = {}
        for event in events:
            entry = by_page.get(event.account_id)
            if entry is None:
                entry = by_page[event.account_id] = {"id": event.account_id, "time": 0, "changes": []}
                entries.append(entry)
            entry["time"] = max(entry["time"], event.occurred_at_ms // 1000)
            entry["changes"].append({"field": "feed", "value": _feed_value(event)})
    return orjson.dumps({"object": kind, "entry": entries})


def _feed_value(event: Interaction) -> dict[str, Any]:
    value: dict[str, Any] = {
        "from": {"id": event.actor_id, "name": _name(event.actor_id)},
        "sender_id": event.actor_id,
        "post_id": event.post_id,
        "verb": "add",
        "created_time": event.occurred_at_ms // 1000,
    }
    if event.type == "comment":
        value.update(
            item="comment",
            comment_id=event.event_id.removeprefix(ids.FB_COMMENT),
            parent_id=event.post_id,
        )
        if event.text is not None:
            value["message"] = event.text
    elif event.type == "share":
        value.update(
            item="share",
            share_id=event.event_id.removeprefix(ids.FB_SHARE),
            link=f"https://www.facebook.com/{event.post_id}",
        )
        if event.text is not None:
            value["message"] = event.text
    else:
        value.update(item="reaction", reaction_type="like", parent_id=event.post_id)
    return value


def _instagram_comment(event: Interaction) -> dict[str, Any]:
    value: dict[str, Any] = {
        "id": event.event_id.removeprefix(ids.IG_COMMENT),
        "from": {"id": event.actor_id, "username": _name(event.actor_id)},
        "media": {"id": event.post_id, "media_product_type": "FEED"},
    }
    if event.text is not None:
        value["text"] = event.text
    return value


# --- X ------------------------------------------------------------------------------------------------


def _x_time(ms: int) -> str:
    """X's ``created_at``: ``Wed Oct 10 20:19:24 +0000 2018``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%a %b %d %H:%M:%S +0000 %Y")


def _x_user(user_id: str) -> dict[str, Any]:
    return {
        "id": int(user_id) if user_id.isdigit() else user_id,
        "id_str": user_id,
        "screen_name": _name(user_id),
    }


def x_body(account_id: str, events: Sequence[Interaction]) -> bytes:
    """One Account Activity delivery for ``account_id`` (every event's account)."""
    account = _x_user(account_id)
    account["screen_name"] = f"brand{account_id[-4:]}"
    favorites: list[dict[str, Any]] = []
    tweets: list[dict[str, Any]] = []
    follows: list[dict[str, Any]] = []
    for event in events:
        ms = event.occurred_at_ms
        if event.type == "like":
            favorites.append(
                {
                    "id": hashlib.md5(event.event_id.encode(), usedforsecurity=False).hexdigest(),
                    "created_at": _x_time(ms),
                    "timestamp_ms": ms,
                    "favorited_status": {"id_str": event.post_id, "user": account},
                    "user": _x_user(event.actor_id),
                }
            )
        elif event.type in ("follow", "unfollow"):
            follows.append(
                {
                    "type": event.type,
                    "created_timestamp": str(ms),
                    "target": {"id": account_id, "screen_name": account["screen_name"]},
                    "source": {"id": event.actor_id, "screen_name": _name(event.actor_id)},
                }
            )
        else:
            tweets.append(_tweet(event, account))
    body: dict[str, Any] = {"for_user_id": account_id}
    if favorites:
        body["favorite_events"] = favorites
    if tweets:
        body["tweet_create_events"] = tweets
    if follows:
        body["follow_events"] = follows
    return orjson.dumps(body)


def _tweet(event: Interaction, account: dict[str, Any]) -> dict[str, Any]:
    tweet_id = event.event_id.removeprefix(ids.X_TWEET)
    tweet: dict[str, Any] = {
        "created_at": _x_time(event.occurred_at_ms),
        "id": int(tweet_id),
        "id_str": tweet_id,
        "timestamp_ms": str(event.occurred_at_ms),
        "user": _x_user(event.actor_id),
        "in_reply_to_status_id_str": None,
        "in_reply_to_user_id_str": None,
    }
    original = {"id_str": event.post_id, "user": account}
    if event.type == "comment":  # a reply; X prepends the handle of the account replied to
        tweet["text"] = f"@{account['screen_name']} {event.text}"
        tweet["in_reply_to_status_id_str"] = event.post_id
        tweet["in_reply_to_user_id_str"] = account["id_str"]
    elif event.text is None:  # a retweet
        tweet["text"] = f"RT @{account['screen_name']}: …"
        tweet["retweeted_status"] = original
    else:  # a quote: the commentary is the follower's text
        tweet["text"] = event.text
        tweet["is_quote_status"] = True
        tweet["quoted_status"] = original
    return tweet
