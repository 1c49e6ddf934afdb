"""EgoSchema (https://github.com/egoschema/EgoSchema).

Annotation file: ``questions.json``, a JSON list of ``{"q_uid", "google_drive_id", "question",
"option 0", ..., "option 4"}``. Answers are public only for the 500-question subset, in
``subset_answers.json`` (``{q_uid: index}``, 0-based integers) next to ``questions.json``;
questions without an answer keep ``answer`` empty. A ``correct_answer`` index inside a record
(``questions_with_correct.json``, read by the repository's benchmarking scripts) is used too.
Every clip lasts three minutes.

Video layout: ``<videos>/<q_uid>.mp4``, the names the repository's ``download.py`` gives the
clips (the Hugging Face release ``lmms-lab/egoschema`` unpacks to the same names).
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
    options,
    read_json_object,
    read_records,
    record,
    text,
    where,
)

CLIP_SECONDS = 180.0
ANSWERS_FILE = "subset_answers.json"


def _row(rec: object, root: Path, answers: dict) -> ManifestRow:
    uid = text(field(rec, "q_uid"), "q_uid")
    opts = options([field(rec, f"option {k}") for k in range(5)], "option fields")
    return ManifestRow(
        id=uid,
        video=str(root / f"{uid}.mp4"),
        question=text(field(rec, "question"), "question"),
        options=opts,
        answer=index_letter(answers[uid], len(opts), f"{ANSWERS_FILE} answer")
        if uid in answers
        else index_letter(record(rec).get("correct_answer"), len(opts), "correct_answer"),
        task="egoschema",
        duration_s=CLIP_SECONDS,
    )


def convert(annotation_path: str | Path, video_root: str | Path) -> Iterator[ManifestRow | Skip]:
    path, root = Path(annotation_path), Path(video_root)
    answers_path = path.parent / ANSWERS_FILE
    answers = read_json_object(answers_path, "{q_uid: answer index}") if answers_path.is_file() else {}
    for i, rec in enumerate(read_records(path)):
        yield guarded(path, where(i, rec, "q_uid"), lambda rec=rec: _row(rec, root, answers))
