"""LVBench (https://github.com/THUDM/LVBench, HF THUDM/LVBench).

Annotation file: ``video_info.meta.jsonl``, one video per line: ``{"key": <YouTube id>, "type",
"video_info": {..., "duration_minutes"}, "qa": [{"uid", "question", "answer", "question_type",
"time_reference"}]}``. The options are inside ``question`` as lines ``(A) ...`` to ``(D) ...``;
``answer`` is the letter; ``question_type`` a list of abilities (the first becomes ``task``);
``time_reference`` a span like ``"00:15-00:19"`` or ``"1:02:03-1:02:10"``, which becomes the
row's evidence. Fields as read by ``lvbench/metrics/compute_accuracy.py`` in THUDM/LVBench.
Videos are ``<key>.mp4``.
"""

from __future__ import annotations

import re
from pathlib import Path

from foveate.agent.records import ManifestRow
from foveate.evals.adapters.common import AnnotationError, field, read_records, seconds

OPTION = re.compile(r"^\(([A-J])\)\s*(.*)$")


def split_question(text: str) -> tuple[str, list[str]]:
    """'What ...?\\n(A) x\\n(B) y' -> ('What ...?', ['x', 'y'])."""
    stem, options = [], []
    for line in text.splitlines():
        m = OPTION.match(line.strip())
        if m:
            options.append(m[2].strip())
        elif options:
            options[-1] += " " + line.strip()
        else:
            stem.append(line)
    return "\n".join(stem).strip(), options


def parse_time_reference(text: str | None) -> list[tuple[float, float]] | None:
    if not text or not str(text).strip():
        return None
    m = re.fullmatch(r"\s*([\d:.]+)\s*-\s*([\d:.]+)\s*", str(text))
    if not m:
        return None
    start, end = seconds(m[1]), seconds(m[2])
    return [(start, end)] if end > start else [(start, start + 1.0)]


def convert(annotation_path: str | Path, video_root: str | Path) -> list[ManifestRow]:
    path, root = Path(annotation_path), Path(video_root)
    rows = []
    for i, video in enumerate(read_records(path)):
        key = str(field(video, "key", path, i))
        info = video.get("video_info") or {}
        minutes = info.get("duration_minutes")
        for qa in field(video, "qa", path, i):
            question, options = split_question(str(field(qa, "question", path, i)))
            if not options:
                raise AnnotationError(path, f"video {key} question {qa.get('uid')}: no '(A) ...' option lines")
            types = qa.get("question_type") or []
            rows.append(
                ManifestRow(
                    id=str(field(qa, "uid", path, i)),
                    video=str(root / f"{key}.mp4"),
                    question=question,
                    options=options,
                    answer=str(qa["answer"]).strip().upper()[:1] if qa.get("answer") else None,
                    evidence=parse_time_reference(qa.get("time_reference")),
                    task=types[0] if isinstance(types, list) and types else None,
                    duration_s=float(minutes) * 60 if minutes is not None else None,
                    question_types=types,
                )
            )
    return rows
