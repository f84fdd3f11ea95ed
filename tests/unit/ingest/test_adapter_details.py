"""The small rules inside the adapters, each with a table."""

from __future__ import annotations

from typing import Any

import pytest

from streams.events import Interaction
from streams.ingest.adapters.base import Context, Ignored, Unmappable, build, epoch_ms, stable_id
from streams.ingest.adapters.bluesky import BlueskyAdapter, repo_of
from streams.ingest.adapters.mastodon import MastodonAdapter, html_to_text
from streams.ingest.adapters.meta import MetaAdapter
from streams.ingest.adapters.x import XAdapter

CTX = Context("test", 1_795_343_400_000, "brand")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1795342499, 1795342499000),  # seconds
        (1795342499123, 1795342499123),  # milliseconds
        ("1795342499123", 1795342499123),  # X sends numeric strings
        (1795342499.9, 1795342499000),
        ("2026-11-22T10:14:59+0000", 1795342499000),  # Graph API style offset
        ("2026-11-22T10:14:59.5Z", 1795342499500),
        ("2026-11-22T10:14:59", None),  # no offset: ambiguous
        ("yesterday", None),
        (-5, None),
        (True, None),
        (None, None),
    ],
)
def test_epoch_ms(value: object, expected: int | None) -> None:
    assert epoch_ms(value) == expected


def test_stable_id_hashes_ids_longer_than_the_schema_allows() -> None:
    short = stable_id("ap", "https://a.example/1")
    assert short == "ap:https://a.example/1"
    long_id = stable_id("ap", "https://a.example/" + "x" * 400)
    assert long_id.startswith("ap:h:") and len(long_id) <= 256
    assert long_id == stable_id("ap", "https://a.example/" + "x" * 400)
    assert long_id != stable_id("ap", "https://a.example/" + "x" * 401)


def test_build_reports_schema_violations_instead_of_raising() -> None:
    result = build(
        event_id="e",
        type="comment",
        platform="x",
        account_id="a",
        actor_id="b",
        post_id=None,  # a comment needs its post
        text="two words",
        occurred_at_ms=1,
        original={"k": 1},
    )
    assert isinstance(result, Unmappable) and result.reason == "schema" and "post_id" in result.detail


def test_build_truncates_text_beyond_the_schema_limit() -> None:
    result = build(
        event_id="e",
        type="comment",
        platform="x",
        account_id="a",
        actor_id="b",
        post_id="p",
        text="word " * 20_000,
        occurred_at_ms=1,
        original=None,
    )
    assert isinstance(result, Interaction) and result.text is not None and len(result.text) == 65_536


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>Plain</p>", "Plain"),
        ('<p><span class="h-card"><a href="x">@<span>brand</span></a></span> hi there</p>', "hi there"),
        ("<p>@brand@brand.example @other thanks a lot</p>", "thanks a lot"),
        ("<p>line one<br>line two</p><p>para</p>", "line one\nline two\npara"),
        ("<p>fish &amp; chips &lt;3</p>", "fish & chips <3"),
        ("<p>email me at a@b.example</p>", "email me at a@b.example"),
    ],
)
def test_mastodon_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


@pytest.mark.parametrize(
    ("uri", "repo"),
    [
        ("at://did:plc:abc/app.bsky.feed.post/3k", "did:plc:abc"),
        ("at://did:web:brand.example/app.bsky.feed.post/3k", "did:web:brand.example"),
        ("at://did:plc:abc/app.bsky.feed.post", None),
        ("https://bsky.app/profile/x/post/3k", None),
        (42, None),
    ],
)
def test_bluesky_repo_of(uri: object, repo: str | None) -> None:
    assert repo_of(uri) == repo


def _x(payload: dict[str, Any]) -> list[Any]:
    return XAdapter().map(payload, CTX)


def test_x_reply_that_also_quotes_counts_as_the_comment() -> None:
    tweet = {
        "id_str": "9",
        "text": "@brand yes, and look at this",
        "in_reply_to_user_id_str": "1",
        "in_reply_to_status_id_str": "5",
        "quoted_status": {"id_str": "6", "user": {"id_str": "1"}},
        "user": {"id_str": "2"},
        "timestamp_ms": "1795342500000",
    }
    [event] = _x({"for_user_id": "1", "tweet_create_events": [tweet]})
    assert isinstance(event, Interaction)
    assert (event.type, event.post_id, event.text) == ("comment", "5", "yes, and look at this")


def test_x_retweet_of_another_account_is_ignored() -> None:
    tweet = {
        "id_str": "9",
        "retweeted_status": {"id_str": "6", "user": {"id_str": "3"}},
        "user": {"id_str": "2"},
    }
    assert _x({"for_user_id": "1", "tweet_create_events": [tweet]}) == [
        Ignored("retweet of another account's post")
    ]


def test_x_without_for_user_id_is_unmappable() -> None:
    [item] = _x({"favorite_events": []})
    assert isinstance(item, Unmappable)


def test_x_event_time_falls_back_to_created_at_then_receive_time() -> None:
    base = {
        "id_str": "9",
        "in_reply_to_user_id_str": "1",
        "in_reply_to_status_id_str": "5",
        "user": {"id_str": "2"},
    }
    [with_created] = _x(
        {
            "for_user_id": "1",
            "tweet_create_events": [{**base, "created_at": "Sun Nov 22 10:20:00 +0000 2026"}],
        }
    )
    [without] = _x({"for_user_id": "1", "tweet_create_events": [base]})
    assert isinstance(with_created, Interaction) and with_created.occurred_at_ms == 1_795_342_800_000
    assert isinstance(without, Interaction) and without.occurred_at_ms == CTX.received_at_ms


@pytest.mark.parametrize(
    ("value", "outcome"),
    [
        ({"item": "comment", "verb": "hide", "comment_id": "c", "from": {"id": "u"}}, "verb hide"),
        ({"item": "comment", "verb": "edited", "comment_id": "c", "from": {"id": "u"}}, "verb edited"),
        ({"item": "reaction", "verb": "remove", "post_id": "p", "from": {"id": "u"}}, "verb remove"),
        ({"item": "rating", "verb": "add"}, "feed item rating"),
    ],
)
def test_meta_non_additions_are_ignored(value: dict[str, Any], outcome: str) -> None:
    payload = {
        "object": "page",
        "entry": [{"id": "page", "time": 1, "changes": [{"field": "feed", "value": value}]}],
    }
    assert MetaAdapter("t").map(payload, CTX) == [Ignored(outcome)]


@pytest.mark.parametrize(
    "payload",
    [{"object": "user", "entry": []}, {"object": "page"}, [1, 2], "text", None],
    ids=["other-object", "no-entry", "list-of-numbers", "string", "null"],
)
def test_meta_payloads_of_the_wrong_shape_are_unmappable(payload: object) -> None:
    mapped = MetaAdapter("t").map(payload, CTX)
    assert mapped and all(isinstance(m, Unmappable) for m in mapped)


def test_meta_messaging_entries_are_ignored() -> None:
    payload = {"object": "page", "entry": [{"id": "page", "time": 1, "messaging": [{"message": {}}]}]}
    assert MetaAdapter("t").map(payload, CTX) == [Ignored("messaging")]


def test_mastodon_needs_the_inbox_account() -> None:
    activity = {"id": "https://a/1", "type": "Like", "actor": "https://a/u", "object": "https://b/s/1"}
    [item] = MastodonAdapter().map(activity, Context("mastodon", 1, None))
    assert isinstance(item, Unmappable)


def test_mastodon_quote_post_is_a_share_with_commentary() -> None:
    activity = {
        "id": "https://a/2/activity",
        "type": "Create",
        "actor": "https://a/u",
        "object": {
            "id": "https://a/2",
            "type": "Note",
            "content": "<p>So true, read it</p>",
            "quoteUri": "https://b/s/1",
        },
    }
    [event] = MastodonAdapter().map(activity, CTX)
    assert isinstance(event, Interaction)
    assert (event.type, event.post_id, event.text, event.event_id) == (
        "share",
        "https://b/s/1",
        "So true, read it",
        "ap:https://a/2",
    )


def test_bluesky_follow_of_oneself_and_updates_are_ignored() -> None:
    adapter = BlueskyAdapter()
    own = {
        "did": "did:plc:a",
        "time_us": 1,
        "kind": "commit",
        "commit": {
            "operation": "create",
            "collection": "app.bsky.graph.follow",
            "rkey": "r",
            "record": {"subject": "did:plc:a"},
        },
    }
    update = {
        "did": "did:plc:a",
        "time_us": 1,
        "kind": "commit",
        "commit": {"operation": "update", "collection": "app.bsky.feed.post", "rkey": "r"},
    }
    assert adapter.map([own, update], CTX) == [
        Ignored("action on one's own post"),
        Ignored("operation update"),
    ]


def test_bluesky_quote_with_a_plain_record_embed_is_a_share_with_commentary() -> None:
    """``app.bsky.embed.record`` holds the strong ref directly (``recordWithMedia`` nests it once more)."""
    quoted = "at://did:plc:brand/app.bsky.feed.post/3k"
    event = {
        "did": "did:plc:fan",
        "time_us": 1_795_342_500_123_456,
        "kind": "commit",
        "commit": {
            "operation": "create",
            "collection": "app.bsky.feed.post",
            "rkey": "3q",
            "record": {
                "text": "look at this",
                "embed": {"$type": "app.bsky.embed.record", "record": {"cid": "bafy", "uri": quoted}},
            },
        },
    }
    [mapped] = BlueskyAdapter().map(event, CTX)
    assert isinstance(mapped, Interaction)
    assert (mapped.type, mapped.account_id, mapped.post_id, mapped.text, mapped.event_id) == (
        "share",
        "did:plc:brand",
        quoted,
        "look at this",
        "bsky:at://did:plc:fan/app.bsky.feed.post/3q",
    )
    assert mapped.occurred_at_ms == 1_795_342_500_123
