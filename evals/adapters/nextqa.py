"""NExT-QA multiple choice (https://github.com/doc-doc/NExT-QA).

Annotation file: ``dataset/nextqa/val.csv`` or ``test.csv`` with the header
``video,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4``: ``answer`` is the
0-based index of the right option among ``a0``..``a4``, ``type`` the question type (CW, CH, TN,
TC, TP, DB, DC, DL, DO). Videos are ``NExTVideo/<dir>/<video>.mp4`` where ``<dir>/<video>``
comes from ``map_vid_vidorID.json`` next to the CSV (the repository's own mapping); without
it, ``<videos>/<video>.mp4``. Row ids are ``<video>_<qid>``. No timestamps: no evidence.
"""

from __future__ import annotations

import csv
from pathlib import Path

from foveate.agent.records import ManifestRow
from foveate.evals.adapters.common import AnnotationError, letter, read_json

COLUMNS = ("video", "question", "answer", "qid", "type", "a0", "a1", "a2", "a3", "a4")


def convert(annotation_path: str | Path, video_root: str | Path) -> list[ManifestRow]:
    path, root = Path(annotation_path), Path(video_root)
    mapping_path = path.parent / "map_vid_vidorID.json"
    mapping = read_json(mapping_path) if mapping_path.is_file() else {}
    try:
        with path.open(newline="", encoding="utf-8") as f:
            records = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AnnotationError(path, f"cannot read the CSV ({exc})") from None
    if records and (missing := [c for c in COLUMNS if c not in records[0]]):
        raise AnnotationError(path, f"missing column(s) {', '.join(missing)} (expected the NExT-QA csv header)")
    rows = []
    for i, rec in enumerate(records, start=2):
        options = [rec[f"a{k}"].strip() for k in range(5)]
        video = rec["video"].strip()
        try:
            answer = letter(int(rec["answer"]), 5, path, f"line {i}") if rec["answer"].strip() else None
        except ValueError:
            raise AnnotationError(path, f"line {i}: answer {rec['answer']!r} is not an option index") from None
        rows.append(
            ManifestRow(
                id=f"{video}_{rec['qid'].strip()}",
                video=str(root / f"{mapping.get(video, video)}.mp4"),
                question=rec["question"].strip(),
                options=options,
                answer=answer,
                task=rec["type"].strip(),
            )
        )
    return rows
