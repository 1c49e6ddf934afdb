"""Replays scripted outputs: for testing the loop, never for answering."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from foveate.agent.backends.base import Controller, ControllerError, Generation
from foveate.agent.toolcalls import parse_tool_calls


class ScriptedController(Controller):
    BACKEND_NAME: ClassVar[str] = "scripted"

    def __init__(self, outputs: list[str]) -> None:
        self.outputs = list(outputs)
        self.calls: list[list[dict]] = []

    @classmethod
    def from_spec(cls, target: str, **options) -> ScriptedController:
        """``target`` is a JSON file holding the list of outputs to replay."""
        try:
            return cls(json.loads(Path(target).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise ControllerError(f"scripted:{target}: cannot read scripted outputs ({exc})") from None

    def generate(self, messages: list[dict], tools: list[dict] | None) -> Generation:
        self.calls.append(messages)
        text = self.outputs.pop(0) if self.outputs else ""
        return Generation(text=text, tool_calls=parse_tool_calls(text), tokens_in=0, tokens_out=len(text.split()))
