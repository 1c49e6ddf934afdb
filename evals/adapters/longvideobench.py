"""LongVideoBench (https://github.com/longvideobench/LongVideoBench, HF longvideobench/LongVideoBench).

Annotation file: ``lvb_val.json`` (or ``lvb_test_wo_gt.json``), a JSON list of questions with
``id``, ``video_id``, ``video_path`` (file name under ``videos/``), ``duration`` (seconds),
``question``, ``candidates`` (option texts), ``correct_choice`` (0-based index; absent in the
test file), ``question_category``, ``topic_category``, ``duration_group``, ``subtitle_path`` and
``starting_timestamp_for_subtitles`` -- as read by ``longvideobench/longvideobench_dataset.py``
in that repository, which opens ``<root>/videos/<video_path>``. Pass ``--videos <root>/videos``.
No timestamps: rows carry no evidence; ``task`` is the ``question_category``.
"""

from __future__ import annotations

from pathlib import Path

from foveate.agent.records import ManifestRow
from foveate.evals.adapters.common import AnnotationError, field, letter, read_records


def convert(annotation_path: str | Path, video_root: str | Path) -> list[ManifestRow]:
    path, root = Path(annotation_path), Path(video_root)
    rows = []
    for i, rec in enumerate(read_records(path)):
        candidates = [str(c) for c in field(rec, "candidates", path, i)]
        if not candidates:
            raise AnnotationError(path, f"record {i} has no candidates")
        answer = rec.get("correct_choice")
        rows.append(
            ManifestRow(
                id=str(field(rec, "id", path, i)),
                video=str(root / str(field(rec, "video_path", path, i))),
                question=str(field(rec, "question", path, i)),
                options=candidates,
                answer=letter(answer, len(candidates), path, f"record {i}") if answer is not None else None,
                task=rec.get("question_category"),
                duration_s=float(rec["duration"]) if rec.get("duration") is not None else None,
                duration_group=rec.get("duration_group"),
            )
        )
    return rows
