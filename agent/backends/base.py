"""The controller backend interface: one required method, ``generate``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from agent.toolcalls import ParsedCall


@dataclass
class Generation:
    text: str
    tool_calls: list[ParsedCall] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0


class Controller:
    """A model that continues a conversation. ``messages`` use content-block lists with PIL images."""

    BACKEND_NAME: ClassVar[str] = "base"

    def generate(self, messages: list[dict], tools: list[dict] | None) -> Generation:
        raise NotImplementedError
