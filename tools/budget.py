"""Frame budget shared by all tool calls of one question."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FrameBudget:
    max_frames: int
    used: int = 0

    @property
    def left(self) -> int:
        return max(0, self.max_frames - self.used)

    def spend(self, n: int) -> None:
        self.used += n


class ToolInputError(ValueError):
    """A tool call's arguments are invalid; the message is shown to the model."""
