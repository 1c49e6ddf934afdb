"""Replays scripted outputs: for testing the loop, never for answering."""

from __future__ import annotations

from typing import ClassVar

from agent.backends.base import Controller, Generation
from agent.toolcalls import parse_tool_calls


class ScriptedController(Controller):
    BACKEND_NAME: ClassVar[str] = "scripted"

    def __init__(self, outputs: list[str]) -> None:
        self.outputs = list(outputs)
        self.calls: list[list[dict]] = []

    def generate(self, messages: list[dict], tools: list[dict] | None) -> Generation:
        self.calls.append(messages)
        text = self.outputs.pop(0) if self.outputs else ""
        return Generation(text=text, tool_calls=parse_tool_calls(text), tokens_in=0, tokens_out=len(text.split()))
