"""VideoToolbox: the tools the controller can call on one VideoMemory.

Every public method is a tool: its signature and Google-style docstring are its schema (read
by transformers' ``get_json_schema``, TRL's ``environment_factory`` and the agent loop alike),
so helpers here start with ``_``. Tools never raise on bad arguments: they return an error
text block that says what to try instead.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from memory.blocks import ContentBlock, text_block
from memory.video_memory import VideoMemory
from tools.budget import FrameBudget, ToolInputError
from tools.dense_sample import dense_sample as _dense_sample
from tools.retrieve import MAX_K
from tools.retrieve import retrieve as _retrieve
from tools.zoom import zoom as _zoom

logger = logging.getLogger(__name__)

TOOL_NAMES = ("retrieve", "zoom", "dense_sample")
MAX_ZOOM_FRAMES = 8
MAX_DENSE_FRAMES = 32


@dataclass
class ToolResult:
    name: str
    arguments: dict
    blocks: list[ContentBlock]
    frames_spent: int = 0
    error: str | None = None


@dataclass
class ToolLog:
    results: list[ToolResult] = field(default_factory=list)


class VideoToolbox:
    """Tools over ``memory`` sharing one frame budget."""

    def __init__(self, memory: VideoMemory, max_frames: int = 64) -> None:
        self._memory = memory
        self._budget = FrameBudget(max_frames)
        self._log = ToolLog()

    # ---- tools ---------------------------------------------------------------------------
    def retrieve(self, query: str, k: int = 5) -> list[ContentBlock]:
        """Search the video's clip memory for the clips that best match a text description.

        Args:
            query: What to look for, described visually (e.g. "a red star moving left").
            k: How many clips to return, 1 to 10.

        Returns:
            The top clips with their time spans, similarity scores and one small thumbnail each.
        """
        return self._run("retrieve", {"query": query, "k": k}, self._retrieve_checked)

    def zoom(self, start: float, end: float, num_frames: int = 4) -> list[ContentBlock]:
        """Look closely at a time window: a few high-resolution frames spread evenly inside it.

        Args:
            start: Window start, seconds from the beginning of the video.
            end: Window end, seconds (greater than start).
            num_frames: How many frames to show, 1 to 8.

        Returns:
            The frames with their timestamps.
        """
        return self._run("zoom", {"start": start, "end": end, "num_frames": num_frames}, self._zoom_checked)

    def dense_sample(self, start: float, end: float, fps: float = 2.0) -> list[ContentBlock]:
        """Sample a window densely at low resolution, to follow motion or count events.

        Args:
            start: Window start, seconds from the beginning of the video.
            end: Window end, seconds (greater than start).
            fps: Frames per second to sample, at most 32 frames in total.

        Returns:
            Contact sheets of small frames in time order, with their timestamps.
        """
        return self._run("dense_sample", {"start": start, "end": end, "fps": fps}, self._dense_checked)

    # ---- adapter machinery -----------------------------------------------------------------
    @property
    def _tools(self) -> list[Callable]:
        return [self.retrieve, self.zoom, self.dense_sample]

    def _call(self, name: str, arguments: Any) -> ToolResult:
        """Dispatch a parsed tool call; unknown names and bad argument shapes become error results."""
        if name not in TOOL_NAMES:
            return self._error(name, arguments if isinstance(arguments, dict) else {},
                               f"unknown tool {name!r}; available tools: {', '.join(TOOL_NAMES)}")
        if not isinstance(arguments, dict):
            return self._error(name, {}, "arguments must be a JSON object, e.g. {\"start\": 10, \"end\": 20}")
        try:
            getattr(self, name)(**arguments)
        except TypeError as exc:
            return self._error(name, arguments, f"bad arguments ({exc}); check the tool's parameters")
        return self._log.results[-1]

    def _error(self, name: str, arguments: dict, message: str) -> ToolResult:
        text = f"Error in {name}: {message}. Please try again with corrected arguments or use another tool."
        result = ToolResult(name, arguments, [text_block(text)], 0, message)
        self._log.results.append(result)
        return result

    def _run(self, name: str, arguments: dict, fn: Callable[..., tuple[list[ContentBlock], int]]) -> list[ContentBlock]:
        try:
            blocks, frames = fn(**arguments)
        except ToolInputError as exc:
            return self._error(name, arguments, str(exc)).blocks
        except Exception as exc:  # a decoding failure must reach the model as text, not end the episode
            logger.warning("tool %s failed: %s", name, exc)
            return self._error(name, arguments, f"{exc.__class__.__name__}: {exc}").blocks
        self._budget.spend(frames)
        blocks.append(text_block(f"[frames spent: {frames}; frame budget left: {self._budget.left}]"))
        self._log.results.append(ToolResult(name, arguments, blocks, frames))
        return blocks

    def _window(self, start: Any, end: Any) -> tuple[float, float]:
        try:
            start, end = float(start), float(end)
        except (TypeError, ValueError):
            raise ToolInputError("start and end must be numbers of seconds") from None
        duration = self._memory.duration_seconds
        if not (math.isfinite(start) and math.isfinite(end)):
            raise ToolInputError("start and end must be finite")
        if start < 0 or start >= duration:
            raise ToolInputError(f"start={start:g} is outside the video [0, {duration:.1f})")
        end = min(end, duration)
        if end <= start:
            raise ToolInputError(f"end must be greater than start (got start={start:g}, end={end:g})")
        return start, end

    def _frames_allowed(self, wanted: int) -> int:
        if self._budget.left <= 0:
            raise ToolInputError("the frame budget is used up; give your final answer now")
        return min(wanted, self._budget.left)

    def _retrieve_checked(self, query: Any, k: Any = 5) -> tuple[list[ContentBlock], int]:
        if not isinstance(query, str) or not query.strip():
            raise ToolInputError("query must be a non-empty text")
        try:
            k = int(k)
        except (TypeError, ValueError):
            raise ToolInputError("k must be an integer") from None
        if not 1 <= k <= MAX_K:
            raise ToolInputError(f"k must be between 1 and {MAX_K}")
        if not self._memory.has_clip_index:
            raise ToolInputError("this video has no clip index; use zoom or dense_sample")
        return _retrieve(self._memory, query.strip(), k, with_thumbnails=self._budget.left >= k)

    def _zoom_checked(self, start: Any, end: Any, num_frames: Any = 4) -> tuple[list[ContentBlock], int]:
        start, end = self._window(start, end)
        try:
            num_frames = int(num_frames)
        except (TypeError, ValueError):
            raise ToolInputError("num_frames must be an integer") from None
        if not 1 <= num_frames <= MAX_ZOOM_FRAMES:
            raise ToolInputError(f"num_frames must be between 1 and {MAX_ZOOM_FRAMES}")
        return _zoom(self._memory, start, end, self._frames_allowed(num_frames))

    def _dense_checked(self, start: Any, end: Any, fps: Any = 2.0) -> tuple[list[ContentBlock], int]:
        start, end = self._window(start, end)
        try:
            fps = float(fps)
        except (TypeError, ValueError):
            raise ToolInputError("fps must be a number") from None
        if not 0 < fps <= 30:
            raise ToolInputError("fps must be in (0, 30]")
        n = math.ceil((end - start) * fps)
        allowed = self._frames_allowed(min(n, MAX_DENSE_FRAMES))
        if n > allowed:  # keep the window, lower the rate to fit the cap
            fps = allowed / (end - start)
        return _dense_sample(self._memory, start, end, fps)


def tool_schemas() -> list[dict]:
    """JSON schemas of the tools, in the transformers / OpenAI function format, sorted by name.

    Sorted because TRL lists a GRPO environment's methods in that order (``inspect.getmembers``):
    the tool block of the prompt must be the same text in training rollouts, in SFT data and at
    inference, or a trained policy sees an input it never saw.
    """
    from transformers.utils import get_json_schema

    return [get_json_schema(getattr(VideoToolbox, name)) for name in sorted(TOOL_NAMES)]
