"""The controller backend interface: one required method, ``generate``, and an optional ``from_spec`` hook."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from foveate.agent.toolcalls import ParsedCall
from foveate.memory.errors import FoveateError


class ControllerError(FoveateError):
    """The controller spec is malformed, its model cannot be loaded, or its server failed a request.

    Raised out of an episode, it carries the steps done so far as ``trajectory`` (answer None) so a
    caller can still record them.
    """

    trajectory: Any = None


@dataclass
class Generation:
    text: str
    tool_calls: list[ParsedCall] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0


class Controller(ABC):
    """A model that continues a conversation. ``messages`` use content-block lists with PIL images.

    ``BACKEND_NAME`` is the prefix of the spec that selects the backend (``openai:MODEL@URL``).
    """

    BACKEND_NAME: ClassVar[str]
    # Generation options this backend accepts from ``load_controller(spec, **options)``; others are ignored.
    OPTIONS: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def generate(self, messages: list[dict], tools: list[dict] | None) -> Generation:
        """Continue ``messages``; ``tools`` are the JSON schemas the model may call."""

    async def agenerate(self, messages: list[dict], tools: list[dict] | None) -> Generation:
        """``generate`` as a coroutine. By default it runs ``generate`` in a worker thread; backends with
        a native async path (an async HTTP client, a batching engine) override it."""
        return await asyncio.to_thread(self.generate, messages, tools)

    @classmethod
    def check(cls, target: str) -> None:
        """Raise ControllerError when ``target`` clearly cannot be loaded; cheap (no model load)."""
        return None  # by default every target is worth trying

    @classmethod
    def from_spec(cls, target: str, **options: Any) -> Controller:
        """Build from the part of the spec after ``BACKEND_NAME:``; ``options`` are already filtered by ``OPTIONS``."""
        return cls(target, **options)
