"""Video-MME (https://github.com/BradyFU/Video-MME, https://huggingface.co/datasets/lmms-lab/Video-MME).

Accepted annotation files:

- the Hugging Face table ``videomme/test-00000-of-00001.parquet`` (or the same records as JSON /
  JSONL), one row per question with ``video_id`` ("001"), ``duration`` ("short" | "medium" |
  "long"), ``domain``, ``sub_category``, ``url``, ``videoID`` (the YouTube id), ``question_id``
  ("001-1"), ``task_type``, ``question``, ``options`` (["A. ...", ...]) and ``answer`` ("A") --
  the fields lmms-eval reads in ``lmms_eval/tasks/videomme/utils.py`` (EvolvingLMMs-Lab/lmms-eval);
- the official repository's nested JSON (``evaluation/output_test_template.json`` in
  BradyFU/Video-MME): a list of videos with ``video_id``, ``duration``/``duration_category``,
  ``domain``/``video_category``, ``url`` and ``questions`` (``question_id``, ``task_type``,
  ``question``, ``options``/``choices``, ``answer``).

Video layout: the released videos are named by their YouTube id, ``<videos>/<videoID>.mp4``
(the ``data/`` folder of the Hugging Face release, which lmms-eval opens). The id is ``videoID``
when the record has it, else the ``v=`` id of its ``url``; ``video_id`` ("001") is only the
question-id prefix and never a file name. A record with neither is skipped.

Video-MME gives no timestamps, so rows carry no evidence; ``task`` is the ``task_type``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from foveate.agent.records import ManifestRow
from foveate.evals.adapters.common import (
    RecordError,
    Skip,
    answer_letter,
    field,
    guarded,
    options,
    read_records,
    record,
    strip_letter,
    text,
    where,
)

_YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")


def youtube_id(video: dict) -> str:
    """``videoID``, else the id in ``url`` (``watch?v=ID``, ``youtu.be/ID``, ``shorts/ID``)."""
    if video.get("videoID"):
        return text(video["videoID"], "videoID")
    url = video.get("url")
    if not isinstance(url, str) or not url.strip():
        raise RecordError("neither 'videoID' nor 'url': cannot name the video file (released as <YouTube id>.mp4)")
    parsed = urlparse(url.strip())
    candidates = parse_qs(parsed.query).get("v", []) + [parsed.path.rstrip("/").rsplit("/", 1)[-1]]
    for c in candidates:
        if _YOUTUBE_ID.fullmatch(c):
            return c
    raise RecordError(f"url {url!r} holds no YouTube video id")


def _row(q: object, video: object, video_root: Path) -> ManifestRow:
    q, video = record(q), record(video)
    raw = q["options"] if "options" in q else field(q, "choices")
    opts = [strip_letter(o) for o in options(raw)]
    return ManifestRow(
        id=str(field(q, "question_id")),
        video=str(video_root / f"{youtube_id(video)}.mp4"),
        question=text(field(q, "question"), "question"),
        options=opts,
        answer=answer_letter(q.get("answer"), len(opts)),
        task=q.get("task_type"),
        duration_category=video.get("duration", video.get("duration_category")),
        domain=video.get("domain", video.get("video_category")),
    )


def convert(annotation_path: str | Path, video_root: str | Path) -> Iterator[ManifestRow | Skip]:
    path, root = Path(annotation_path), Path(video_root)
    for i, rec in enumerate(read_records(path)):
        if not (isinstance(rec, dict) and "questions" in rec):
            yield guarded(path, where(i, rec, "question_id"), lambda rec=rec: _row(rec, rec, root))
        elif not isinstance(rec["questions"], list):
            yield Skip(file=str(path), record=where(i, rec, "video_id"), reason="'questions' is not a list")
        else:
            for j, q in enumerate(rec["questions"]):
                at = f"{where(i, rec, 'video_id')} {where(j, q, 'question_id', 'question')}"
                yield guarded(path, at, lambda q=q, rec=rec: _row(q, rec, root))
