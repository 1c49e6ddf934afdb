"""Clip handles: the short names (``c1``, ``c2``, ...) that ``retrieve`` gives the clips it returns.

A controller copies ``"c3"`` more reliably than ``12.0`` and ``16.0``, and cannot mistake it for a
frame index. Handles are numbered in the order clips are first returned, across every ``retrieve``
call of one episode; a clip returned again keeps its handle. ``zoom``, ``dense_sample`` and the
final answer's ``evidence`` accept them in place of seconds.
"""

from __future__ import annotations

import copy

Span = tuple[float, float]  # half-open [start_seconds, end_seconds)


class ClipHandles:
    """The episode's handle -> span map, numbered from ``c1`` in order of first appearance."""

    PREFIX = "c"

    def __init__(self) -> None:
        self._spans: dict[str, Span] = {}
        self._names: dict[Span, str] = {}

    def name(self, start_seconds: float, end_seconds: float) -> str:
        """The handle of the clip ``[start_seconds, end_seconds)``, a new one if it has none yet."""
        span = (float(start_seconds), float(end_seconds))
        if span not in self._names:
            handle = f"{self.PREFIX}{len(self._spans) + 1}"
            self._names[span], self._spans[handle] = handle, span
        return self._names[span]

    def resolve(self, handle: str) -> Span | None:
        """The span named by ``handle`` (case and surrounding spaces ignored), None if unknown."""
        return self._spans.get(handle.strip().lower()) if isinstance(handle, str) else None

    def describe_known(self) -> str:
        """For error messages: which handles exist, or that none does yet."""
        if not self._spans:
            return "no clip has been retrieved yet: call retrieve first, or give start and end in seconds"
        return "the known handles are " + ", ".join(self._spans)

    def as_dict(self) -> dict[str, Span]:
        """A copy of the map, ``{"c1": (start_seconds, end_seconds), ...}``."""
        return dict(self._spans)

    def copy(self) -> ClipHandles:
        return copy.deepcopy(self)

    def __len__(self) -> int:
        return len(self._spans)
