"""Fixtures of the deploy tests: the real Prometheus (shared helper in tests/integration/prom.py)."""

from tests.integration.prom import prometheus

__all__ = ["prometheus"]
