"""Trajectories: every step of an episode as pydantic records, written as JSONL.

Images are not stored: each tool turn keeps its call, and replaying the calls on the same
VideoMemory (same cache) regenerates exactly the images the controller saw.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field

from foveate.agent.answer import Answer


class ToolTurn(BaseModel):
    name: str | None
    arguments: dict | None = None
    frames_spent: int = 0
    error: str | None = None
    window: tuple[float, float] | None = Field(
        default=None,
        description="The [start_seconds, end_seconds) window zoom or dense_sample looked at, clip handles resolved.",
    )
    summary: str = Field(default="", description="The result's text blocks (images referenced, not stored).")
    images: int = 0


class Step(BaseModel):
    text: str = Field(description="The controller's raw output.")
    tool_turns: list[ToolTurn] = Field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0
    forced_final: bool = False


class Trajectory(BaseModel):
    id: str = ""
    video: str
    question: str
    options: list[str] | None = None
    duration_s: float
    steps: list[Step] = Field(default_factory=list)
    answer: Answer | None = None
    frames_used: int = 0
    tool_calls: int = 0
    latency_s: float = 0.0
    error: str | None = Field(default=None, description="Why the episode stopped before an answer, if it did.")
    gold: str | None = Field(default=None, description="Ground-truth answer, when known.")
    gold_evidence: list[tuple[float, float]] | None = None

    @property
    def tokens_in(self) -> int:
        return sum(s.tokens_in for s in self.steps)

    @property
    def tokens_out(self) -> int:
        return sum(s.tokens_out for s in self.steps)


def write_trajectories(path: str | Path, trajectories: list[Trajectory], append: bool = True) -> None:
    with open(path, "a" if append else "w") as f:
        for t in trajectories:
            f.write(t.model_dump_json() + "\n")


def read_trajectories(path: str | Path) -> Iterator[Trajectory]:
    for line in Path(path).read_text().splitlines():
        if line.strip():
            yield Trajectory.model_validate(json.loads(line))
