"""Ctrl-C stops the overview's worker threads at once instead of after the scan."""

from __future__ import annotations

import _thread
import threading
import time

import pytest

from foveate.memory.config import IngestConfig
from foveate.memory.overview import build_overview
from foveate.memory.probe import probe
from foveate.memory.threads import Cancelled, map_stoppable


def test_an_interrupt_stops_every_worker():
    seen = []

    def work(k: int, stop: threading.Event) -> int:
        if k == 0:
            time.sleep(0.3)
            _thread.interrupt_main()  # what Ctrl-C does: KeyboardInterrupt in the main thread
            return k
        for _ in range(500):  # 50 s unless stopped
            if stop.is_set():
                seen.append(k)
                raise Cancelled
            time.sleep(0.1)
        return k

    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        map_stoppable(work, [0, 1], "test-worker")
    assert time.perf_counter() - start < 5 and seen == [1]
    assert not [t for t in threading.enumerate() if t.name.startswith("test-worker")]


@pytest.mark.parametrize("full_scan", [False, True], ids=["after-keyframes", "every-frame"])
def test_ctrl_c_during_an_overview_scan_returns_promptly(cuts_video, tmp_path, full_scan):
    calls = []

    def progress(fraction: float) -> None:
        if not calls:
            _thread.interrupt_main()
        calls.append(fraction)

    config = IngestConfig(full_scan_below_seconds=1e4 if full_scan else 0, decode_threads=2)
    with pytest.raises(KeyboardInterrupt):
        build_overview(cuts_video.path, probe(cuts_video.path), config, tmp_path / "ov", progress=progress)
    if full_scan:  # one range scanned frame by frame: it stops long before its end
        assert 1.0 not in calls
    # joined: none still runs (a joined thread can linger in threading.enumerate() for a moment)
    assert not [t for t in threading.enumerate() if t.name.startswith("overview-") and t.is_alive()]
