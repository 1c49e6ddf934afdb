"""LVBench (https://github.com/THUDM/LVBench, HF THUDM/LVBench).

Annotation file: ``video_info.meta.jsonl``, one video per line: ``{"key": <YouTube id>, "type",
"video_info": {..., "duration_minutes"}, "qa": [{"uid", "question", "answer", "question_type",
"time_reference"}]}``. The options are inside ``question`` as lines ``(A) ...`` to ``(D) ...``;
``answer`` is the letter; ``question_type`` a list of abilities (the first becomes ``task``);
``time_reference`` a span like ``"00:15-00:19"`` or ``"1:02:03-1:02:10"``, which becomes the
row's evidence (a single moment, ``"00:15-00:15"``, becomes one second). A time reference in
any other form, or a reversed span, is dropped with a warning; the question is kept. Fields as
read by ``lvbench/metrics/compute_accuracy.py`` in THUDM/LVBench.

Video layout: ``<videos>/<key>.mp4``, the YouTube id the repository's download script names
each video by.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

from foveate.agent.records import ManifestRow
from foveate.evals.adapters.common import (
    RecordError,
    Skip,
    answer_letter,
    field,
    guarded,
    number,
    read_records,
    record,
    seconds,
    text,
    where,
)

logger = logging.getLogger(__name__)
OPTION = re.compile(r"^\(([A-J])\)\s*(.*)$")
_SPAN = re.compile(r"\s*(\d+(?::\d+){0,2}(?:\.\d+)?)\s*-\s*(\d+(?::\d+){0,2}(?:\.\d+)?)\s*")


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


def parse_time_reference(value: object) -> list[tuple[float, float]] | None:
    """'00:15-00:19' -> [(15.0, 19.0)]; None when empty; ValueError for other forms and reversed spans."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    m = _SPAN.fullmatch(value) if isinstance(value, str) else None
    if not m:
        raise ValueError(f"time_reference {value!r} is not one 'start-end' span")
    start, end = seconds(m[1]), seconds(m[2])
    if end < start:
        raise ValueError(f"time_reference {value!r} ends before it starts")
    return [(start, end if end > start else start + 1.0)]


def _evidence(qa: dict, path: Path, at: str) -> list[tuple[float, float]] | None:
    try:
        return parse_time_reference(qa.get("time_reference"))
    except ValueError as exc:
        logger.warning("%s: %s: %s; the question is kept without evidence", path, at, exc)
        return None


def _row(video: object, qa: object, root: Path, path: Path, at: str) -> ManifestRow:
    key = text(field(video, "key"), "key")
    if not isinstance(field(video, "qa"), list):
        raise RecordError("'qa' is not a list of questions")
    info = record(video).get("video_info") or {}
    minutes = number(record(info).get("duration_minutes"), "video_info.duration_minutes")
    question, options = split_question(text(field(qa, "question"), "question"))
    if not options:
        raise RecordError("no '(A) ...' option lines in the question")
    types = qa.get("question_type") or []
    return ManifestRow(
        id=str(field(qa, "uid")),
        video=str(root / f"{key}.mp4"),
        question=question,
        options=options,
        answer=answer_letter(qa.get("answer"), len(options)),
        evidence=_evidence(qa, path, at),
        task=types[0] if isinstance(types, list) and types else None,
        duration_s=minutes * 60 if minutes is not None else None,
        question_types=types,
    )


def convert(annotation_path: str | Path, video_root: str | Path) -> Iterator[ManifestRow | Skip]:
    path, root = Path(annotation_path), Path(video_root)
    for i, video in enumerate(read_records(path)):
        qas = video.get("qa") if isinstance(video, dict) else None
        if not isinstance(qas, list):  # _row names what is wrong with the video record
            yield guarded(path, where(i, video, "key"), lambda video=video: _row(video, {}, root, path, ""))
            continue
        for j, qa in enumerate(qas):
            at = f"{where(i, video, 'key')} {where(j, qa, 'uid', 'question')}"
            yield guarded(path, at, lambda video=video, qa=qa, at=at: _row(video, qa, root, path, at))
