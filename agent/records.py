"""File records users' scripts rely on: manifest rows in, prediction rows out (JSONL).

Time spans everywhere are half-open ``[start_seconds, end_seconds)`` pairs in seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from foveate.agent.answer import LETTERS

Span = tuple[float, float]


def _check_spans(spans: list[Span]) -> list[Span]:
    for start, end in spans:
        if not (start >= 0 and end > start):
            raise ValueError(f"evidence span [{start}, {end}) must satisfy 0 <= start < end")
    return spans


class ManifestRow(BaseModel):
    """One question about one video."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(description="Unique id of the question.")
    video: str = Field(description="Path to the video; relative paths resolve against the manifest's folder.")
    question: str = Field(description="The question text.")
    options: list[str] | None = Field(
        default=None, description="Multiple-choice options, in order (letters A, B, ...)."
    )
    answer: str | None = Field(
        default=None, description="Ground truth: an option letter for multiple choice, else free text."
    )
    evidence: list[Span] | None = Field(default=None, description="Ground-truth evidence spans, seconds.")
    task: str | None = Field(default=None, description="Task family, for breakdowns (e.g. 'needle', 'counting').")
    duration_s: float | None = Field(default=None, description="Video duration in seconds, for duration buckets.")

    @field_validator("evidence")
    @classmethod
    def _valid_spans(cls, v):
        return None if v is None else _check_spans(v)

    @model_validator(mode="after")
    def _answer_names_an_option(self):
        # Scoring compares the chosen letter with this one (evals/metrics.py: is_correct), so a
        # letter no option has would make the question unanswerable.
        if not self.options:
            return self
        if len(self.options) > len(LETTERS):
            raise ValueError(f"{len(self.options)} options; at most {len(LETTERS)} (A-{LETTERS[-1]}) are supported")
        letters = LETTERS[: len(self.options)]
        if self.answer is not None and self.answer.strip().upper() not in letters:
            raise ValueError(
                f"answer {self.answer!r} must be the letter of one of the {len(letters)} options (A-{letters[-1]})"
            )
        return self


class PredictionRow(BaseModel):
    """One answered (or failed) question."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="Id of the manifest row this answers.")
    answer: str = Field(default="", description="Free-text answer.")
    choice: str | None = Field(default=None, description="Chosen option letter, when the question had options.")
    evidence: list[Span] = Field(default_factory=list, description="Evidence spans cited, seconds.")
    frames_used: int = Field(
        default=0, ge=0, description="Frames shown to the controller, overview thumbnails included."
    )
    tool_calls: int = Field(default=0, ge=0, description="Tool calls executed.")
    tokens_in: int = Field(default=0, ge=0, description="Prompt tokens over all controller calls.")
    tokens_out: int = Field(default=0, ge=0, description="Generated tokens over all controller calls.")
    latency_s: float = Field(default=0.0, ge=0, description="Wall-clock seconds for this question.")
    error: str | None = Field(default=None, description="One-line error when the row failed.")
    policy: str | None = Field(default=None, description="Policy that produced it: agent, uniform or retrieval.")


def read_manifest(path: str | Path) -> list[ManifestRow]:
    """Read a JSONL manifest; relative video paths are resolved against the manifest's folder.

    Raises ValueError naming the file and line for malformed rows and duplicate ids.
    """
    path = Path(path)
    rows: list[ManifestRow] = []
    seen: set[str] = set()
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            row = ManifestRow.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ValueError(f"{path}:{lineno}: {where + ': ' if where else ''}{err['msg']}") from None
        except Exception as exc:  # json error: report it with its place
            raise ValueError(f"{path}:{lineno}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}") from None
        if row.id in seen:
            raise ValueError(f"{path}:{lineno}: duplicate id {row.id!r}")
        seen.add(row.id)
        video = Path(row.video)
        if not video.is_absolute():
            row = row.model_copy(update={"video": str((path.parent / video).resolve())})
        rows.append(row)
    return rows


def iter_predictions(path: str | Path) -> Iterator[PredictionRow]:
    """Yield prediction rows; a trailing partial line (from a killed writer) is skipped."""
    path = Path(path)
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            yield PredictionRow.model_validate_json(line)
        except ValueError:
            continue
