"""Worker threads that stop when the user presses Ctrl-C.

PyAV releases the GIL while it decodes, so the overview scans in threads. Ctrl-C raises
KeyboardInterrupt in the main thread only, and leaving a ``ThreadPoolExecutor`` waits for its
threads: a scan of an hour would finish before the program could exit. Workers here get a
``threading.Event`` they poll between packets; the main thread sets it when anything (Ctrl-C
included) interrupts the wait, so the scan stops within one packet's decoding.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Cancelled(Exception):
    """Raised inside a worker that saw the stop event; the main thread re-raises what stopped it."""


def map_stoppable(fn: Callable[[T, threading.Event], R], items: Sequence[T], name: str) -> list[R]:
    """``[fn(item, stop) for item in items]``, one thread per item, results in order; a worker's exception
    is raised here, and anything raised here (Ctrl-C) stops every worker before it propagates."""
    stop = threading.Event()
    results: list = [None] * len(items)
    errors: list[BaseException | None] = [None] * len(items)

    def run(k: int) -> None:
        try:
            results[k] = fn(items[k], stop)
        except BaseException as exc:  # noqa: BLE001  (re-raised in the calling thread)
            errors[k] = exc
            stop.set()

    threads: list[threading.Thread] = []
    try:
        for k in range(len(items)):
            threads.append(threading.Thread(target=run, args=(k,), name=f"{name}-{k}", daemon=True))
            threads[-1].start()
        for t in threads:
            while t.is_alive():
                t.join(0.1)  # short waits, so that Ctrl-C reaches this thread at once
    except BaseException:
        stop.set()
        for t in threads:
            t.join()
        raise
    first = next((e for e in errors if e is not None and not isinstance(e, Cancelled)), None)
    if first is not None:
        raise first
    return results


@contextlib.contextmanager
def collecting_cycles() -> Iterator[None]:
    """Freeze the objects that exist now, so that the workers' frequent ``gc.collect()`` calls are cheap.

    A decoded frame whose motion-vector side data was read sits in a reference cycle (the frame and
    its side-data container) until the cyclic collector runs; decoding windows of an hour of 720p
    pinned hundreds of MB of frames that way. Collecting every few groups frees them, and with
    everything older frozen each collection only looks at what the decoding made since.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
