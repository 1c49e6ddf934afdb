"""Write a world: videos, event logs and a manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from evals.synthetic.questions import make_questions
from evals.synthetic.world import SPLIT_SEEDS, make_event_log, render_video, save_log


def generate_world(out: Path, videos: int, minutes: float, seed: int = 0, split: str = "train", questions_per_video: int = 6,
                   fps: int = 10, size: tuple[int, int] = (320, 240), progress: Callable[[int], None] | None = None) -> Path:
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLIT_SEEDS)}")
    (out / "videos").mkdir(parents=True, exist_ok=True)
    (out / "events").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(videos):
        s = SPLIT_SEEDS[split] + seed + i
        vid = f"{split}-{s:06d}"
        log = make_event_log(s, minutes, fps, size)
        save_log(log, out / "events" / f"{vid}.json")
        render_video(log, out / "videos" / f"{vid}.mp4")
        rows += make_questions(log, f"videos/{vid}.mp4", vid, questions_per_video, s)
        if progress:
            progress(i + 1)
    manifest = out / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r.model_dump(exclude_none=True)) + "\n" for r in rows))
    return manifest
