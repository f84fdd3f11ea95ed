"""The installed version of engagement-streams (``engage --version``, ``engage_build_info``)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    try:
        return version("engagement-streams")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"
