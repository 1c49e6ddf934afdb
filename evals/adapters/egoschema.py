"""EgoSchema (https://github.com/egoschema/EgoSchema).

Annotation file: ``questions.json``, a JSON list of ``{"q_uid", "google_drive_id", "question",
"option 0", ..., "option 4"}``; videos are ``<q_uid>.mp4`` (the repository's ``download.py``
names them so). Answers are public only for the 500-question subset, in ``subset_answers.json``
(``{q_uid: index}``) next to ``questions.json``; questions without an answer keep ``answer``
empty. A ``correct_answer`` index inside a record (``questions_with_correct.json``, read by the
repository's benchmarking scripts) is used too. Every clip lasts three minutes.
"""

from __future__ import annotations

from pathlib import Path

from foveate.agent.records import ManifestRow
from foveate.evals.adapters.common import field, letter, read_json, read_records

CLIP_SECONDS = 180.0


def convert(annotation_path: str | Path, video_root: str | Path) -> list[ManifestRow]:
    path, root = Path(annotation_path), Path(video_root)
    answers_path = path.parent / "subset_answers.json"
    answers = read_json(answers_path) if answers_path.is_file() else {}
    rows = []
    for i, rec in enumerate(read_records(path)):
        uid = str(field(rec, "q_uid", path, i))
        options = [str(field(rec, f"option {k}", path, i)) for k in range(5)]
        index = answers.get(uid, rec.get("correct_answer"))
        rows.append(
            ManifestRow(
                id=uid,
                video=str(root / f"{uid}.mp4"),
                question=str(field(rec, "question", path, i)),
                options=options,
                answer=letter(index, 5, path, f"q_uid {uid}") if index is not None else None,
                task="egoschema",
                duration_s=CLIP_SECONDS,
            )
        )
    return rows
