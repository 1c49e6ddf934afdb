"""MLVU dev (https://github.com/JUNJIE99/MLVU, HF MLVU/MVLU).

The dev set is ``MLVU/json/<n>_<task>.json`` (``1_plotQA``, ``2_needle``, ``3_ego``, ``4_count``,
``5_order``, ``6_anomaly_reco``, ``7_topic_reasoning``; ``8_sub_scene`` and ``9_summary`` are
open-ended generation tasks scored by a judge model: skipped in a folder, an error when passed
alone), each a JSON list of ``{"video", "duration", "question", "candidates", "answer",
"question_type"}`` where ``answer`` is the text of the right candidate.

Gold letters follow the official scorer, ``qa_template`` in the repository's
``choice_bench.py``: it compares ``answer`` with each candidate using ``==`` (no type
conversion) and keeps the LAST match, so a repeated candidate gives the later letter. A record
whose answer matches no candidate (``2_needle.json`` record 34 in the release) is skipped with
a warning; the official scorer keeps it and always scores it wrong. Records with an empty
question or only empty candidates are skipped too.

Video layout: ``MLVU/video/<n>_<task>/<video>``, as ``choice_bench.py`` and lmms-eval's ``mlvu``
task read it. Pass one JSON file or the ``json`` folder as ANNOTATION and ``MLVU/video`` as
``--videos``. Row ids are ``<n>_<task>-<index in the file>``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from foveate.agent.answer import LETTERS
from foveate.agent.records import ManifestRow
from foveate.evals.adapters.common import (
    AnnotationError,
    RecordError,
    Skip,
    field,
    guarded,
    number,
    options,
    read_records,
    record,
    text,
    where,
)

logger = logging.getLogger(__name__)
OPEN_ENDED = ("8_sub_scene", "9_summary")


def gold_letter(candidates: list, answer: object) -> str:
    """The letter ``choice_bench.py``'s ``qa_template`` gives: the last candidate equal to ``answer``."""
    matches = [i for i, c in enumerate(candidates) if c == answer]
    if not matches:
        raise RecordError(
            f"the answer {answer!r} is not one of its candidates (MLVU's choice_bench.py keeps the question "
            "and always scores it wrong)"
        )
    return LETTERS[matches[-1]]


def _row(rec: object, path: Path, root: Path, i: int) -> ManifestRow:
    raw = field(rec, "candidates")
    candidates = options(raw, "candidates")
    question = text(field(rec, "question"), "question")
    return ManifestRow(
        id=f"{path.stem}-{i}",
        video=str(root / path.stem / text(field(rec, "video"), "video")),
        question=question,
        options=candidates,
        answer=gold_letter(list(raw), field(rec, "answer")),
        task=record(rec).get("question_type") or path.stem,
        duration_s=number(rec.get("duration"), "duration"),
    )


def _rows(path: Path, root: Path) -> Iterator[ManifestRow | Skip]:
    for i, rec in enumerate(read_records(path)):
        yield guarded(path, where(i, rec, "video"), lambda rec=rec, i=i: _row(rec, path, root, i))


def convert(annotation_path: str | Path, video_root: str | Path) -> Iterator[ManifestRow | Skip]:
    path, root = Path(annotation_path), Path(video_root)
    if not path.is_dir():
        if path.stem in OPEN_ENDED:
            raise AnnotationError(
                path, "an open-ended generation task (no candidates); pass a multiple-choice file or the json folder"
            )
        yield from _rows(path, root)
        return
    files = sorted(path.glob("*.json"))
    if not files:
        raise AnnotationError(path, "no *.json annotation files in this folder")
    for f in files:
        if f.stem in OPEN_ENDED:
            logger.info("%s: open-ended task, skipped", f)
            continue
        yield from _rows(f, root)
