"""Mastodon / ActivityPub: activities delivered to a brand account's inbox.

Route: ``POST /v1/webhooks/mastodon/{account}``; ``{account}`` is the brand account the inbox belongs
to (an ActivityPub inbox is per actor, and a ``Like`` names only the liked object's URI, not its
owner). A federated server signs inbox deliveries with HTTP Signatures (draft-cavage, RSA keys
published on the remote actor), which needs fetching and caching remote keys. **Out of scope here:**
deployments put a relay in front that verifies those and forwards the activity signed like the
generic endpoint, ``X-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>`` with the secret
named ``mastodon``.

====================================================  ========  =====================================
activity                                              type      event_id
====================================================  ========  =====================================
``Like`` {object}                                     like      ``ap:<activity id>``
``Announce`` {object} (boost)                         share     ``ap:<activity id>``
``Create`` {Note with ``inReplyTo``}                  comment   ``ap:<note id>``
``Create`` {Note quoting (``quote``/``quoteUri``)}    share     ``ap:<note id>`` (text = commentary)
``Follow``                                            follow    ``ap:<activity id>``
``Undo`` {``Follow``}                                 unfollow  ``ap:<undo activity id>``
====================================================  ========  =====================================

Known limit: an inbox also receives the posts and boosts of the accounts the brand follows, and this
adapter does not know the brand's actor URI, so it counts every boost and reply it is given as one on
``{account}``; the relay must forward only activities whose object is the account's.

Note ``content`` is HTML: tags are stripped, entities decoded and the leading ``@mentions`` Mastodon
prepends to a reply removed. Ignored: ``Undo`` of a like or boost, ``Update``, ``Delete`` and every
other activity type, and plain posts that neither reply nor quote.
"""

from __future__ import annotations

import html
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
_BREAKS = re.compile(r"<\s*(?:br\s*/?|/p\s*)>", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]*>")
_LEADING_MENTIONS = re.compile(r"^(?:\s*@[\w.-]+(?:@[\w.-]+)?)+\s*")


def html_to_text(content: str) -> str:
    text = html.unescape(_TAGS.sub("", _BREAKS.sub("\n", content)))
    return _LEADING_MENTIONS.sub("", text).strip()


def _ref(value: object) -> str | None:
    """An ActivityPub reference: a URI string, or an object with an ``id``."""
    if type(value) is str:
        return value or None
    ref = obj(value).get("id")
    return ref if type(ref) is str and ref else None


class MastodonAdapter(JsonAdapter):
    name = "mastodon"
    # event_id prefixes and platforms only this adapter emits (the generic route may not use them)
    id_prefixes: tuple[str, ...] = ("ap",)
    emits_platforms: tuple[str, ...] = ("mastodon",)
    takes_account = True

    def verify(self, headers: Mapping[str, str], raw_body: bytes, secret: str, now_ms: int) -> None:
        verify_hex_hmac(headers, raw_body, secret, SIGNATURE_HEADER)

    def map(self, payload: Any, context: Context) -> list[Mapped]:
        activities = payload if type(payload) is list else [payload]
        return [self._activity(obj(activity), activity, context) for activity in activities]

    def _activity(self, activity: dict[str, Any], original: Any, context: Context) -> Mapped:
        kind, activity_id, actor = activity.get("type"), _ref(activity), _ref(activity.get("actor"))
        if context.account is None or type(kind) is not str or activity_id is None or actor is None:
            return Unmappable(
                "unmappable", "activitypub: expected type, id and actor (and an inbox account)", original
            )
        target = activity.get("object")
        occurred = (
            first_time(activity.get("published"), obj(target).get("published")) or context.received_at_ms
        )
        text: str | None = None
        post_id: str | None = None
        event_id = stable_id("ap", activity_id)
        if kind in ("Like", "Announce"):
            event_type, post_id = ("like" if kind == "Like" else "share"), _ref(target)
        elif kind == "Follow":
            event_type = "follow"
        elif kind == "Undo":
            if obj(target).get("type") != "Follow":
                return Ignored(f"undo of {obj(target).get('type') or 'an unknown activity'}")
            event_type = "unfollow"
        elif kind == "Create":
            note = obj(target)
            note_id = _ref(note)
            content = note.get("content")
            text = html_to_text(content) if type(content) is str else None
            reply_to = _ref(note.get("inReplyTo"))
            quoted = next(
                filter(None, (_ref(note.get(k)) for k in ("quote", "quoteUri", "_misskey_quote"))), None
            )
            if note_id is None:
                return Unmappable("unmappable", "activitypub Create without an object id", original)
            if reply_to is not None:
                event_type, post_id = "comment", reply_to
            elif quoted is not None:
                event_type, post_id = "share", quoted
            else:
                return Ignored("post that is not a reply or a quote")
            event_id = stable_id("ap", note_id)
        else:
            return Ignored(f"activity {kind}")
        return build(
            event_id=event_id,
            type=event_type,
            platform="mastodon",
            account_id=context.account,
            actor_id=actor,
            post_id=post_id,
            text=text,
            occurred_at_ms=occurred,
            original=original,
        )


def create(settings: Any) -> MastodonAdapter:
    return MastodonAdapter()
