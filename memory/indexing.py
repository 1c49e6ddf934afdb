"""One video's index as a report row: what ``foveate index`` prints, here and on Ray workers."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)


def one_line_error(video: Path | str, exc: BaseException) -> str:
    """``path: reason`` on one line, whatever the exception."""
    from foveate.memory.errors import FoveateError

    text = " ".join(str(exc).split()) or exc.__class__.__name__
    if isinstance(exc, FoveateError):
        return text if str(video) in text or text.startswith("openclip:") else f"{video}: {text}"
    return f"{video}: unexpected {exc.__class__.__name__}: {text[:300]}"


def index_report(video: Path | str, ingest_fn: Callable[[Path | str], object]) -> dict:
    """Index ``video`` with ``ingest_fn`` (returns its VideoMemory) and describe the result; a failure is a row
    with ``status: error`` and a one-line ``error``, never an exception (the other videos go on)."""
    start = time.perf_counter()
    try:
        mem = ingest_fn(video)
    except Exception as exc:  # a decoder or library failure on odd input: report it, keep going with the rest
        logger.debug("indexing %s failed", video, exc_info=True)
        return {
            "video": str(video),
            "status": "error",
            "error": one_line_error(video, exc),
            "seconds": round(time.perf_counter() - start, 3),
        }
    return {
        "video": str(video),
        "status": "ok",
        "duration_s": round(mem.duration_seconds, 3),
        "segments": len(mem.overview.segments),
        "clips": len(mem.clips) if mem.has_clip_index else 0,
        "seconds": round(time.perf_counter() - start, 3),
        "motion_source": mem.overview.motion_source,
        "motion_sampling": mem.overview.motion_sampling,
        "clip_frames": mem.clip_frame_source,
        "transcript_cues": len(mem.transcript) if mem.transcript is not None else 0,
        "cached": not mem.built_parts,
    }
