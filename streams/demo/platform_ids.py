"""Platform-native ids for generated events, and the canonical ``event_id`` derived from them.

A generated event that travels as a platform webhook must carry the ``event_id`` the ingest adapter
derives from that platform's payload, so that generated → payload → adapter gives the same canonical
event back (and a redelivered payload the same id). The schemes mirror ``streams/ingest/adapters/``
(``meta.py``, ``x.py``); ``tests/unit/demo/test_webhooks.py`` checks the round trip through them.

Events a platform's webhook cannot express (see :data:`NATIVE`) go through the generic endpoint as
canonical events and keep the generator's own id.
"""

from __future__ import annotations

from typing import Final

X_EPOCH_MS: Final = 1_288_834_974_657

# Which canonical types each platform's webhook carries natively; the rest use the generic endpoint.
NATIVE: Final[dict[str, frozenset[str]]] = {
    "generic": frozenset({"like", "comment", "share", "follow", "unfollow"}),
    "facebook": frozenset({"like", "comment", "share"}),  # Page `feed`: reaction, comment, share
    "instagram": frozenset({"comment"}),  # Instagram `comments` field
    "x": frozenset({"like", "comment", "share", "follow", "unfollow"}),  # Account Activity API
}

# Prefixes of the adapters' event ids (streams.ingest.adapters.meta / .x).
FB_COMMENT: Final = "fb:comment:"
FB_SHARE: Final = "fb:share:"
FB_LIKE: Final = "fb:like:"
IG_COMMENT: Final = "ig:comment:"
X_TWEET: Final = "x:tweet:"
X_FAV: Final = "x:fav:"


def snowflake(t_ms: int, sequence: int) -> str:
    """An X-style id: time in the high bits, so ids sort by time like the real ones."""
    return str(((t_ms - X_EPOCH_MS) << 22) | (sequence & 0x3FFFFF))


def fb_comment_id(post_id: str, n: int) -> str:
    """Graph API comment ids are ``{post-id-suffix}_{comment-number}``."""
    return f"{post_id.rpartition('_')[2]}_{n}"


def event_id(
    platform: str, event_type: str, n: int, t_ms: int, account_id: str, actor_id: str, post_id: str | None
) -> str:
    """The canonical ``event_id`` of the ``n``-th generated event, as the adapter derives it.

    Only for a (platform, type) in :data:`NATIVE` other than generic. Note that on Facebook and X a
    like is identified by (post, actor), as on the platforms: a repeated like is the same like.
    """
    if platform == "facebook":
        if event_type == "comment":
            assert post_id is not None
            return FB_COMMENT + fb_comment_id(post_id, n)
        if event_type == "share":
            return f"{FB_SHARE}{110_000_000_000_000 + n}"
        return f"{FB_LIKE}{post_id}:{actor_id}"
    if platform == "instagram":
        return f"{IG_COMMENT}{17_950_000_000_000_000 + n}"
    if platform != "x":
        raise ValueError(f"no native event ids for {platform}")
    if event_type in ("comment", "share"):
        return X_TWEET + snowflake(t_ms, n)
    if event_type == "like":
        return f"{X_FAV}{post_id}:{actor_id}"
    return f"x:{event_type}:{actor_id}:{account_id}:{t_ms}"
