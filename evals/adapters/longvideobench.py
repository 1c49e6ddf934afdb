"""LongVideoBench (https://github.com/longvideobench/LongVideoBench, HF longvideobench/LongVideoBench).

Annotation file: ``lvb_val.json`` (or ``lvb_test_wo_gt.json``), a JSON list of questions with
``id``, ``video_id``, ``video_path`` (file name under ``videos/``), ``duration`` (seconds),
``question``, ``candidates`` (option texts), ``correct_choice`` (0-based integer index; absent
in the test file), ``question_category``, ``topic_category``, ``duration_group``,
``subtitle_path`` and ``starting_timestamp_for_subtitles`` -- as read by
``longvideobench/longvideobench_dataset.py`` in that repository, which scores
``correct_choice`` as an index into ``candidates``.

Video layout: ``<root>/videos/<video_path>`` (the repository's loader opens exactly that); pass
``--videos <root>/videos``. No timestamps: rows carry no evidence; ``task`` is the
``question_category``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from foveate.agent.records import ManifestRow
from foveate.evals.adapters.common import (
    Skip,
    field,
    guarded,
    index_letter,
    number,
    options,
    read_records,
    record,
    text,
    where,
)


def _row(rec: object, root: Path) -> ManifestRow:
    candidates = options(field(rec, "candidates"), "candidates")
    return ManifestRow(
        id=str(field(rec, "id")),
        video=str(root / text(field(rec, "video_path"), "video_path")),
        question=text(field(rec, "question"), "question"),
        options=candidates,
        answer=index_letter(record(rec).get("correct_choice"), len(candidates), "correct_choice"),
        task=rec.get("question_category"),
        duration_s=number(rec.get("duration"), "duration"),
        duration_group=rec.get("duration_group"),
    )


def convert(annotation_path: str | Path, video_root: str | Path) -> Iterator[ManifestRow | Skip]:
    path, root = Path(annotation_path), Path(video_root)
    for i, rec in enumerate(read_records(path)):
        yield guarded(path, where(i, rec, "id"), lambda rec=rec: _row(rec, root))
