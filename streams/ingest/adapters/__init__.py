"""Platform adapters, one module each, all behind :class:`~streams.ingest.adapters.base.Adapter`.

Adding a platform is one new module with a ``create(settings) -> Adapter`` factory and its name in
:data:`MODULES`; no other adapter changes. The route is ``/v1/webhooks/<adapter.name>`` (the generic
adapter serves ``/v1/events``) and the secret is ``ENGAGE_WEBHOOK_SECRETS[<adapter.name>]``.
"""

from __future__ import annotations

import importlib

from streams.ingest.adapters.base import Adapter
from streams.settings import Settings

MODULES = ("generic", "meta", "x", "mastodon", "bluesky")


def build_adapters(settings: Settings) -> dict[str, Adapter]:
    adapters: dict[str, Adapter] = {}
    for module in MODULES:
        adapter: Adapter = importlib.import_module(f"streams.ingest.adapters.{module}").create(settings)
        adapters[adapter.name] = adapter
    return adapters
