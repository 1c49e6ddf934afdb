"""NExT-QA multiple choice (https://github.com/doc-doc/NExT-QA).

Annotation file: ``dataset/nextqa/val.csv`` or ``test.csv`` with the header
``video,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4``: ``answer`` is the
0-based index of the right option among ``a0``..``a4``, ``type`` the question type (CW, CH, TN,
TC, TP, DB, DC, DL, DO). Row ids are ``<video>_<qid>``. No timestamps: no evidence.

Video layout: the release unpacks to ``NExTVideo/<dir>/<video>.mp4``, where ``<dir>/<video>``
comes from ``map_vid_vidorID.json`` next to the CSV (the repository's own mapping, a JSON object
``{video: "dir/video"}``); pass ``--videos NExTVideo``. A video missing from the mapping (or no
mapping file) is looked for at ``<videos>/<video>.mp4``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from foveate.agent.records import ManifestRow
from foveate.evals.adapters.common import (
    AnnotationError,
    RecordError,
    Skip,
    guarded,
    index_letter,
    options,
    read_json_object,
    text,
)

COLUMNS = ("video", "question", "answer", "qid", "type", "a0", "a1", "a2", "a3", "a4")
MAP_FILE = "map_vid_vidorID.json"


def _mapping(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    mapping = read_json_object(path, '{video: "dir/video"}')
    bad = next((k for k, v in mapping.items() if not isinstance(v, str)), None)
    if bad is not None:
        kind = type(mapping[bad]).__name__
        raise AnnotationError(path, f"the entry for {bad!r} is a {kind}, not a 'dir/video' path")
    return mapping


def _answer(value: str) -> str | None:
    if not value.strip():
        return None
    try:
        return index_letter(int(value), 5)
    except ValueError:
        raise RecordError(f"answer {value!r} is not an option index (0-4)") from None


def _row(rec: dict, root: Path, mapping: dict[str, str], n_fields: int) -> ManifestRow:
    if None in rec or None in rec.values():
        found = n_fields + len(rec.get(None) or []) - sum(v is None for v in rec.values())
        raise RecordError(f"has {found} fields, the header has {n_fields}")
    video = text(rec["video"], "video")
    return ManifestRow(
        id=f"{video}_{rec['qid'].strip()}",
        video=str(root / f"{mapping.get(video, video)}.mp4"),
        question=text(rec["question"], "question"),
        options=options([rec[f"a{k}"] for k in range(5)], "options a0-a4"),
        answer=_answer(rec["answer"]),
        task=rec["type"].strip(),
    )


def convert(annotation_path: str | Path, video_root: str | Path) -> Iterator[ManifestRow | Skip]:
    path, root = Path(annotation_path), Path(video_root)
    mapping = _mapping(path.parent / MAP_FILE)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            if header and (missing := [c for c in COLUMNS if c not in header]):
                expected = "(expected the NExT-QA csv header)"
                raise AnnotationError(path, f"missing column(s) {', '.join(missing)} {expected}")
            rows = [(reader.line_num, rec) for rec in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AnnotationError(path, f"cannot read the CSV ({exc})") from None
    for line, rec in rows:
        yield guarded(path, f"line {line}", lambda rec=rec: _row(rec, root, mapping, len(header)))
