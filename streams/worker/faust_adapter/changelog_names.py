"""Faust's changelog topics named like every other topic of the application: ``ENGAGE_TOPIC_PREFIX`` first.

Faust names a table's changelog ``<app id>-<table>-changelog`` (``Table._changelog_topic_name``, a private
method of faust-streaming 0.15) with no prefix, so a prefix-scoped ACL (``prod.*``) would not cover it. The
app is given a :class:`faust.Table` subclass (Faust's ``Table`` setting) that puts the prefix in front.
:func:`streams.topics.changelog_topic` is the same name, for :mod:`streams.topics` to create first.
Guarded by ``tests/unit/worker/test_changelog_names.py``.
"""

from __future__ import annotations

from typing import Any

import faust


def prefixed_table(prefix: str) -> type[Any]:
    """A :class:`faust.Table` whose changelog topic name starts with ``prefix``."""
    if not prefix:
        return faust.Table

    class PrefixedTable(faust.Table):  # type: ignore[type-arg]
        def _changelog_topic_name(self) -> str:
            return f"{prefix}{super()._changelog_topic_name()}"

    return PrefixedTable
