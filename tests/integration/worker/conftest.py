from tests.integration.prom import prometheus

__all__ = ["prometheus"]
