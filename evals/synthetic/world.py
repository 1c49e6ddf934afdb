"""The synthetic long-video world: write videos, their event logs and a question manifest.

Layout of a world folder::

    OUT/videos/<split>-<seed>.mp4    H.264 video (see evals.synthetic.render)
    OUT/events/<split>-<seed>.json   ground-truth event log (see evals.synthetic.events)
    OUT/manifest.jsonl               questions (DESIGN.md manifest rows), written last

Splits own disjoint seed ranges (train 0-9999, val 10000-19999, test 20000-29999); ``seed`` is
the offset inside the split, so ``--split test --seed 5`` draws video seed 20005. A video whose
file is already there with the same event log is not rendered again; files appear atomically.
Each video is encoded on one thread, so ``workers`` processes render a world to the same bytes.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from foveate.evals.synthetic.events import (
    COLOURS,
    DIRECTIONS,
    SHAPES,
    SPLIT_SEEDS,
    SPLIT_SIZE,
    EventLog,
    Scene,
    SpriteEvent,
    TextCard,
    WorldConfig,
    dump_log,
    load_log,
    make_event_log,
    save_log,
)
from foveate.evals.synthetic.questions import make_questions
from foveate.evals.synthetic.render import render_video
from foveate.memory.atomic import atomic_path, write_atomic

logger = logging.getLogger(__name__)

__all__ = [
    "COLOURS",
    "DIRECTIONS",
    "SHAPES",
    "SPLIT_SEEDS",
    "EventLog",
    "Scene",
    "SpriteEvent",
    "TextCard",
    "WorldConfig",
    "dump_log",
    "generate_world",
    "load_log",
    "make_event_log",
    "render_video",
    "save_log",
    "video_seed",
]


def video_seed(split: str, seed: int, index: int = 0) -> int:
    """The seed of video ``index`` of a run starting at offset ``seed`` in ``split``."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLIT_SEEDS)}")
    if seed < 0 or seed + index >= SPLIT_SIZE:
        raise ValueError(
            f"seed offset {seed + index} is outside the {split} split's range 0-{SPLIT_SIZE - 1}; "
            f"lower --seed or --videos"
        )
    return SPLIT_SEEDS[split] + seed + index


def _render_once(log: EventLog, events_path: Path, video_path: Path, progress: Callable[[float], None] | None) -> None:
    text = dump_log(log)
    if video_path.is_file() and events_path.is_file() and events_path.read_text() == text:
        logger.info("%s is up to date", video_path)
        return
    with atomic_path(video_path) as tmp:
        render_video(log, tmp, progress)
    write_atomic(events_path, text)


def cpu_count() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def generate_world(
    out: str | Path,
    videos: int,
    minutes: float,
    seed: int = 0,
    split: str = "train",
    questions_per_video: int = 6,
    fps: int = 10,
    size: tuple[int, int] = (320, 240),
    progress: Callable[[float], None] | None = None,
    pan: bool = True,
    config: WorldConfig | None = None,
    workers: int = 1,
) -> Path:
    """Write ``videos`` world videos of ``minutes`` each into ``out``; returns the manifest path.

    ``progress`` gets the number of videos done so far (fractional while one renders in this process).
    ``workers`` > 1 renders that many videos at a time in worker processes (the same files).
    ``config`` sets the other world parameters (scene lengths, speeds, ...); ``minutes``,
    ``fps``, ``size`` and ``pan`` override its fields.
    """
    if videos < 1:
        raise ValueError(f"--videos must be >= 1, got {videos}")
    seeds = [video_seed(split, seed, i) for i in range(videos)]
    out = Path(out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    (out / "events").mkdir(parents=True, exist_ok=True)
    logs = [(f"{split}-{s:06d}", make_event_log(s, minutes, fps, size, pan, config=config)) for s in seeds]
    paths = [(out / "events" / f"{vid}.json", out / "videos" / f"{vid}.mp4") for vid, _ in logs]
    if workers > 1 and videos > 1:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, videos), mp_context=context) as pool:
            futures = [pool.submit(_render_once, log, *paths[i], None) for i, (_, log) in enumerate(logs)]
            for done, future in enumerate(as_completed(futures), 1):
                future.result()
                if progress is not None:
                    progress(float(done))
    else:
        for i, (_, log) in enumerate(logs):
            step = None if progress is None else (lambda f, i=i: progress(i + f))
            _render_once(log, *paths[i], step)
            if progress is not None:
                progress(i + 1.0)
    rows = []
    for (vid, log), s in zip(logs, seeds):
        rows += make_questions(log, f"videos/{vid}.mp4", vid, questions_per_video, s)
    manifest = out / "manifest.jsonl"
    write_atomic(manifest, "".join(json.dumps(r.model_dump(exclude_none=True)) + "\n" for r in rows))
    return manifest
