"""Video-MME (https://github.com/BradyFU/Video-MME, https://huggingface.co/datasets/lmms-lab/Video-MME).

Accepted annotation files:

- the Hugging Face table ``videomme/test-00000-of-00001.parquet`` (or the same records as JSON /
  JSONL), one row per question with ``video_id`` ("001"), ``duration`` ("short" | "medium" |
  "long"), ``domain``, ``sub_category``, ``url``, ``videoID`` (the YouTube id, also the video file
  name), ``question_id`` ("001-1"), ``task_type``, ``question``, ``options`` (["A. ...", ...]) and
  ``answer`` ("A") -- the fields lmms-eval reads in ``lmms_eval/tasks/videomme/utils.py``
  (EvolvingLMMs-Lab/lmms-eval), which opens ``data/<videoID>.mp4``;
- the official repository's nested JSON (``evaluation/output_test_template.json`` in
  BradyFU/Video-MME): a list of videos with ``video_id``, ``duration_category``,
  ``video_category``, ``video_subcategory`` and ``questions`` (``question_id``, ``task_type``,
  ``question``, ``choices``, ``answer``); the video file is ``<videoID or video_id>.mp4``.

Video-MME gives no timestamps, so rows carry no evidence; ``task`` is the ``task_type``.
"""

from __future__ import annotations

from pathlib import Path

from foveate.agent.records import ManifestRow
from foveate.evals.adapters.common import AnnotationError, field, read_records, strip_letter


def _row(q: dict, video: dict, video_root: Path, path: Path, i: int) -> ManifestRow:
    options = q.get("options", q.get("choices"))
    if options is None:
        raise AnnotationError(path, f"record {i} has neither 'options' nor 'choices'")
    stem = str(video.get("videoID") or field(video, "video_id", path, i))
    answer = q.get("answer")
    return ManifestRow(
        id=str(field(q, "question_id", path, i)),
        video=str(video_root / f"{stem}.mp4"),
        question=str(field(q, "question", path, i)),
        options=[strip_letter(o) for o in list(options)],
        answer=str(answer).strip().upper()[:1] if answer else None,
        task=q.get("task_type"),
        duration_category=video.get("duration", video.get("duration_category")),
        domain=video.get("domain", video.get("video_category")),
    )


def convert(annotation_path: str | Path, video_root: str | Path) -> list[ManifestRow]:
    path, root = Path(annotation_path), Path(video_root)
    rows = []
    for i, rec in enumerate(read_records(path)):
        if isinstance(rec, dict) and "questions" in rec:
            rows += [_row(q, rec, root, path, i) for q in rec["questions"]]
        else:
            rows.append(_row(rec, rec, root, path, i))
    return rows
