"""Parsing Qwen-style tool calls: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

TOOL_CALL_RE = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)


@dataclass
class ParsedCall:
    name: str | None
    arguments: object
    error: str | None = None  # why the call could not be parsed


def format_tool_call(name: str, **arguments) -> str:
    """One tool call in the controller's format (the inverse of :func:`parse_tool_calls`)."""
    return "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"


def parse_tool_calls(text: str) -> list[ParsedCall]:
    """Every ``<tool_call>`` block in ``text``; unparseable ones carry an ``error``."""
    calls = []
    for raw in TOOL_CALL_RE.findall(text or ""):
        raw = raw.strip()
        try:
            payload = json.loads(raw)
        except json.JSONDecodeError as exc:
            calls.append(ParsedCall(None, None, f"the tool call is not valid JSON ({exc.msg})"))
            continue
        if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
            calls.append(ParsedCall(None, None, 'a tool call must be {"name": ..., "arguments": {...}}'))
            continue
        args = payload.get("arguments", payload.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                calls.append(ParsedCall(payload["name"], None, "arguments must be a JSON object"))
                continue
        calls.append(ParsedCall(payload["name"], args))
    return calls
