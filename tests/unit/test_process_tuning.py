"""The worker process's interpreter settings: GC thresholds and the GIL switch interval."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams import runtime
from streams.commands import worker
from streams.settings import Settings


@pytest.fixture
def restored() -> Iterator[None]:
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    yield
    gc.set_threshold(*thresholds)
    sys.setswitchinterval(interval)


def test_tune_worker_process_sets_thresholds_and_switch_interval(restored: None) -> None:
    gc.set_threshold(700, 10, 10)
    sys.setswitchinterval(0.005)
    runtime.tune_worker_process()
    assert gc.get_threshold() == runtime.WORKER_GC_THRESHOLDS
    assert sys.getswitchinterval() == pytest.approx(runtime.WORKER_SWITCH_INTERVAL_S)
    assert runtime.WORKER_SWITCH_INTERVAL_S > 0.005  # longer than CPython's default, the point of it


class _Stop(Exception):
    pass


def test_engage_worker_tunes_the_process_before_building_anything(
    restored: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``engage worker`` applies the settings first: they are in force when its sink is created."""
    sys.setswitchinterval(0.005)
    seen: list[tuple[float, tuple[int, int, int]]] = []

    def create_sink(*args: object, **kwargs: object) -> None:
        seen.append((sys.getswitchinterval(), gc.get_threshold()))
        raise _Stop

    monkeypatch.setattr(worker, "create_sink", create_sink)
    settings = Settings.from_env({"ENGAGE_DATA_DIR": str(tmp_path)})
    args = argparse.Namespace(sink="memory", embedded=False, loglevel="warn")
    with pytest.raises(_Stop):
        worker.run(args, settings)
    assert seen == [(pytest.approx(runtime.WORKER_SWITCH_INTERVAL_S), runtime.WORKER_GC_THRESHOLDS)]
