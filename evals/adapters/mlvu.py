"""MLVU dev (https://github.com/JUNJIE99/MLVU, HF MLVU/MVLU).

The dev set is ``MLVU/json/<n>_<task>.json`` (``1_plotQA``, ``2_needle``, ``3_ego``, ``4_count``,
``5_order``, ``6_anomaly_reco``, ``7_topic_reasoning``; ``8_sub_scene`` and ``9_summary`` are
open-ended generation tasks scored by a judge model and are skipped), each a JSON list of
``{"video", "duration", "question", "candidates", "answer", "question_type"}`` where ``answer``
is the text of the right candidate. Videos live in ``MLVU/video/<n>_<task>/<video>``, the
layout the MLVU repository's ``choice_bench.py`` and lmms-eval's ``mlvu`` task read. Pass one
JSON file or the ``json`` folder as ANNOTATION and ``MLVU/video`` as ``--videos``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from foveate.agent.records import ManifestRow
from foveate.evals.adapters.common import LETTERS, AnnotationError, field, read_records

logger = logging.getLogger(__name__)
OPEN_ENDED = ("8_sub_scene", "9_summary")


def _convert_file(path: Path, root: Path) -> list[ManifestRow]:
    rows = []
    for i, rec in enumerate(read_records(path)):
        candidates = [str(c) for c in field(rec, "candidates", path, i)]
        answer = str(field(rec, "answer", path, i))
        if answer not in candidates:
            raise AnnotationError(path, f"record {i}: the answer {answer!r} is not one of its candidates")
        rows.append(
            ManifestRow(
                id=f"{path.stem}-{i}",
                video=str(root / path.stem / str(field(rec, "video", path, i))),
                question=str(field(rec, "question", path, i)),
                options=candidates,
                answer=LETTERS[candidates.index(answer)],
                task=rec.get("question_type", path.stem),
                duration_s=float(rec["duration"]) if rec.get("duration") is not None else None,
            )
        )
    return rows


def convert(annotation_path: str | Path, video_root: str | Path) -> list[ManifestRow]:
    path, root = Path(annotation_path), Path(video_root)
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise AnnotationError(path, "no *.json annotation files in this folder")
    rows = []
    for f in files:
        if f.stem in OPEN_ENDED:
            logger.info("%s: open-ended task, skipped", f)
            continue
        rows += _convert_file(f, root)
    return rows
