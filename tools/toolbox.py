"""VideoToolbox: the tools the controller can call on one VideoMemory.

Every public method is a tool, declared once with ``@tool`` (see :mod:`foveate.tools.declare`):
its signature and Google-style docstring are its schema (read by transformers'
``get_json_schema``, TRL's ``environment_factory`` and the agent loop alike), so helpers here
start with ``_`` and read-only state is exposed as properties (TRL lists functions, not
properties). Tools never raise on bad arguments: they return an error text block that says what
to try instead. Clips that ``retrieve`` returns get handles (``c1``, ``c2``, ... across the
episode, :mod:`foveate.tools.handles`) that ``zoom`` and ``dense_sample`` accept in place of
seconds; every result records the window it resolved to. When the question has options, a
``retrieve`` query may be an option's letter (``"B"``), which searches for that option's text.
:func:`dispatch` runs a parsed call; it is a function rather than a method so that TRL does not
offer it to the model as a tool.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

from foveate.memory.blocks import ContentBlock, text_block
from foveate.memory.video_memory import VideoMemory
from foveate.tools.declare import Observation, Range, ToolInputError, tool, tool_names
from foveate.tools.dense_sample import dense_sample as _dense_sample
from foveate.tools.handles import ClipHandles, Span
from foveate.tools.retrieve import retrieve as _retrieve
from foveate.tools.zoom import zoom as _zoom

logger = logging.getLogger(__name__)

MAX_K = 10
MAX_QUERIES = 8  # in one retrieve call
MAX_ZOOM_FRAMES = 8
MAX_DENSE_FRAMES = 32
MAX_FPS = 30
# How the prompt letters a question's options (foveate.agent.answer.LETTERS; tools sit below agent).
OPTION_LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class ToolResult:
    """One executed (or rejected) call: what the model asked for and what it was shown."""

    name: str
    arguments: dict
    blocks: list[ContentBlock]
    frames_spent: int = 0
    error: str | None = None
    window: Span | None = None  # [start_seconds, end_seconds) that zoom / dense_sample looked at, handles resolved


class VideoToolbox:
    """Tools over ``memory`` sharing one frame budget of ``max_frames``.

    ``memory`` may be None until :meth:`_load` gives one (the GRPO environment loads a video per rollout).
    ``options``: the question's options, which retrieve queries may name by letter.
    ``question``: restated at the end of every result (``Question: ...``), after the budget line, so
    the turn that follows a long tool result (a zoom's frames, a list of clips) has the question in view.
    """

    def __init__(
        self,
        memory: VideoMemory | None,
        max_frames: int = 64,
        options: list[str] | None = None,
        question: str | None = None,
    ) -> None:
        self._max_frames = max_frames
        self._load(memory, options, question)

    def _load(self, memory: VideoMemory | None, options: list[str] | None = None, question: str | None = None) -> None:
        """Point the toolbox at ``memory`` (and a question and its ``options``) with a fresh frame budget,
        an empty call log and no clip handles."""
        self._memory = memory
        self._options = list(options or [])
        self._question = question
        self._frames_used = 0
        self._results: list[ToolResult] = []
        self._handles = ClipHandles()
        self._resolved: Span | None = None  # the window of the call being run

    # ---- tools ---------------------------------------------------------------------------
    @tool
    def retrieve(self, query: str | list[str], k: Annotated[int, Range(1, MAX_K)] = 5) -> Observation:
        """Search the video's clip memory for the clips that best match a text description.

        Args:
            query: What to look for, described visually (e.g. "a red star moving left"), or an option's letter
                ("B") for that option's text; or a list of these, to see which came first: the top clips of
                each, listed together in time order.
            k: How many clips to return, of each description.

        Returns:
            The top clips, each with its handle (c1, c2, ...), time span, similarity score and thumbnail.
        """
        if not self._memory.has_clip_index:
            raise ToolInputError("this video has no clip index; use zoom or dense_sample")
        n = len(query) if isinstance(query, list) else 1
        if n > MAX_QUERIES:
            raise ToolInputError(f"at most {MAX_QUERIES} queries in one call (got {n})")
        labels = [self._option(q) for q in (query if isinstance(query, list) else [query])]
        texts = [text for _, text in labels]
        handles = self._handles.copy()  # kept only if the model gets to see the result
        observation = _retrieve(
            self._memory,
            texts if isinstance(query, list) else texts[0],
            k,
            handles,
            with_thumbnails=self.frames_left >= k * n,
            labels=[label for label, _ in labels],
        )
        self._handles = handles
        return observation

    @tool
    def zoom(
        self,
        start: float | None = None,
        end: float | None = None,
        num_frames: Annotated[int, Range(1, MAX_ZOOM_FRAMES)] = 4,
        clip: str | None = None,
    ) -> Observation:
        """Look closely at a time window: a few high-resolution frames spread evenly inside it.

        Args:
            start: Window start, seconds from the beginning of the video.
            end: Window end, seconds (greater than start).
            num_frames: How many frames to show.
            clip: A clip handle from retrieve (e.g. "c2"); used instead of start and end.

        Returns:
            The frames with their timestamps.
        """
        start, end = self._window(start, end, clip)
        return _zoom(self._memory, start, end, self._frames_allowed(num_frames))

    @tool
    def dense_sample(
        self,
        start: float | None = None,
        end: float | None = None,
        fps: Annotated[float, Range(0, MAX_FPS, low_open=True)] = 2.0,
        clip: str | None = None,
    ) -> Observation:
        """Sample a window densely at low resolution, to follow motion or count events.

        Args:
            start: Window start, seconds from the beginning of the video.
            end: Window end, seconds (greater than start).
            fps: Frames per second to sample; at most 32 frames in total, the rate is lowered to fit.
            clip: A clip handle from retrieve (e.g. "c2"); used instead of start and end.

        Returns:
            Contact sheets of small frames in time order, with their timestamps.
        """
        start, end = self._window(start, end, clip)
        n = math.ceil((end - start) * fps)
        allowed = self._frames_allowed(min(n, MAX_DENSE_FRAMES))
        if n > allowed:  # keep the window, lower the rate to fit the cap
            fps = allowed / (end - start)
        return _dense_sample(self._memory, start, end, fps)

    # ---- read-only state -------------------------------------------------------------------
    @property
    def max_frames(self) -> int:
        """The frame budget of one question."""
        return self._max_frames

    @property
    def frames_used(self) -> int:
        """Frames the tools have shown so far (the overview's keyframes not included)."""
        return self._frames_used

    @property
    def frames_left(self) -> int:
        return max(0, self._max_frames - self._frames_used)

    @property
    def duration_seconds(self) -> float:
        return self._memory.duration_seconds

    @property
    def results(self) -> tuple[ToolResult, ...]:
        """Every call so far, in order, errors included."""
        return tuple(self._results)

    @property
    def handles(self) -> dict[str, Span]:
        """The clip handles retrieve has given so far, ``{"c1": (start_seconds, end_seconds), ...}`` (a copy)."""
        return self._handles.as_dict()

    # ---- helpers -------------------------------------------------------------------------
    def _option(self, query: str) -> tuple[str, str]:
        """(label, text) of one retrieve query: an option's letter names that option (``"B. the red cross"``,
        ``"the red cross"``); any other query is its own label and text."""
        letter = query.strip().upper()
        if not self._options or len(letter) != 1 or letter not in OPTION_LETTERS:
            return query, query
        if letter not in OPTION_LETTERS[: len(self._options)]:
            raise ToolInputError(
                f"{query!r} is not one of the question's options (A-{OPTION_LETTERS[len(self._options) - 1]})"
            )
        text = self._options[OPTION_LETTERS.index(letter)]
        return f"{letter}. {text}", text

    def _record(self, name: str, arguments: dict, run: Callable[[], Observation]) -> list[ContentBlock]:
        """Run a tool body, spend its frames and log the result; failures become an error result."""
        self._resolved = None
        try:
            blocks, frames = run()
        except ToolInputError as exc:
            return self._reject(name, arguments, str(exc)).blocks
        except Exception as exc:  # a decoding failure must reach the model as text, not end the episode
            logger.warning("tool %s failed: %s", name, exc)
            return self._reject(name, arguments, f"{exc.__class__.__name__}: {exc}").blocks
        self._frames_used += frames
        footer = f"[frames spent: {frames}; frame budget left: {self.frames_left}]"
        if self._question:
            footer += f"\nQuestion: {self._question}"
        blocks = blocks + [text_block(footer)]
        self._results.append(ToolResult(name, arguments, blocks, frames, window=self._resolved))
        return blocks

    def _reject(self, name: str, arguments: dict, message: str) -> ToolResult:
        text = f"Error in {name}: {message}. Please try again with corrected arguments or use another tool."
        result = ToolResult(name, arguments, [text_block(text)], 0, message)
        self._results.append(result)
        return result

    def _window(self, start: float | None, end: float | None, clip: str | None) -> Span:
        """The call's window ``[start, end)`` in seconds, from ``clip`` or from ``start`` and ``end``,
        cut to the video; exactly one of the two ways must be given."""
        if clip is not None:
            known = self._handles.describe_known()
            if start is not None or end is not None:
                raise ToolInputError(f'give either clip or start and end, not both (e.g. {{"clip": "c2"}}); {known}')
            span = self._handles.resolve(clip)
            if span is None:
                raise ToolInputError(f"unknown clip handle {clip!r}; {known}")
            start, end = span
        elif start is None or end is None:
            missing = " and ".join(n for n, v in (("start", start), ("end", end)) if v is None)
            known = f"; {self._handles.describe_known()}" if len(self._handles) else ""
            raise ToolInputError(
                f"{missing} missing: give start and end in seconds, or clip, a handle from retrieve "
                f'(e.g. {{"clip": "c2"}}){known}'
            )
        duration = self._memory.duration_seconds
        if start < 0 or start >= duration:
            raise ToolInputError(f"start={start:g} is outside the video [0, {duration:.1f})")
        end = min(end, duration)
        if end <= start:
            raise ToolInputError(f"end must be greater than start (got start={start:g}, end={end:g})")
        self._resolved = (start, end)
        return start, end

    def _frames_allowed(self, wanted: int) -> int:
        if self.frames_left <= 0:
            raise ToolInputError("the frame budget is used up; give your final answer now")
        return min(wanted, self.frames_left)


TOOL_NAMES: tuple[str, ...] = tool_names(VideoToolbox)


def dispatch(toolbox: VideoToolbox, name: str | None, arguments: Any, parse_error: str | None = None) -> ToolResult:
    """Run one parsed call on ``toolbox``. Unknown names, non-object arguments and calls that did not
    parse (``parse_error``) become error results shown to the model; nothing raises."""
    given = arguments if isinstance(arguments, dict) else {}
    if parse_error is not None:
        return toolbox._reject(name or "tool_call", given, parse_error)
    if name not in TOOL_NAMES:
        return toolbox._reject(str(name), given, f"unknown tool {name!r}; available tools: {', '.join(TOOL_NAMES)}")
    if not isinstance(arguments, dict):
        return toolbox._reject(name, {}, 'arguments must be a JSON object, e.g. {"start": 10, "end": 20}')
    getattr(toolbox, name)(**arguments)
    return toolbox.results[-1]


@lru_cache(maxsize=1)
def _schemas() -> tuple[dict, ...]:
    from transformers.utils import get_json_schema

    return tuple(get_json_schema(getattr(VideoToolbox, name)) for name in TOOL_NAMES)


def tool_schemas() -> list[dict]:
    """JSON schemas of the tools, in the transformers / OpenAI function format, sorted by name.

    Sorted because TRL lists a GRPO environment's methods in that order (``inspect.getmembers``):
    the tool block of the prompt must be the same text in training rollouts, in SFT data and at
    inference, or a trained policy sees an input it never saw.
    """
    import copy

    return copy.deepcopy(list(_schemas()))


def tool_signatures() -> str:
    """One line per tool, ``name(param, param=default): description``, generated from the schemas."""
    import inspect

    lines = []
    for schema in _schemas():
        fn = schema["function"]
        defaults = {n: p.default for n, p in inspect.signature(getattr(VideoToolbox, fn["name"])).parameters.items()}
        params = [
            n if n in fn["parameters"].get("required", []) else f"{n}={defaults[n]!r}"
            for n in fn["parameters"]["properties"]
        ]
        lines.append(f"- {fn['name']}({', '.join(params)}): {fn['description']}")
    return "\n".join(lines)
