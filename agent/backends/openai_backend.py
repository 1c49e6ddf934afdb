"""Any OpenAI-compatible server (vLLM, SGLang): native tool calls, images as data URLs."""

from __future__ import annotations

import base64
import io
import json
from typing import ClassVar

from foveate.agent.backends.base import Controller, ControllerError, Generation
from foveate.agent.toolcalls import ParsedCall, parse_tool_calls


def _image_url(image) -> dict:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=90)
    return {
        "type": "image_url",
        "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()},
    }


def to_openai_messages(messages: list[dict]) -> list[dict]:
    out = []
    for m in messages:
        parts = [
            {"type": "text", "text": b["text"]} if b["type"] == "text" else _image_url(b["image"])
            for b in m["content"]
        ]
        if m["role"] == "tool":  # tool messages carry text only; images follow in a user turn
            out.append(
                {
                    "role": "user",
                    "content": [{"type": "text", "text": f"<tool_response name={m.get('name')}>"}]
                    + parts
                    + [{"type": "text", "text": "</tool_response>"}],
                }
            )
        else:
            out.append({"role": m["role"], "content": parts})
    return out


class OpenAIController(Controller):
    BACKEND_NAME: ClassVar[str] = "openai"
    OPTIONS: ClassVar[tuple[str, ...]] = ("max_tokens", "temperature")

    def __init__(
        self, model: str, base_url: str, api_key: str = "EMPTY", max_tokens: int = 512, temperature: float = 0.0
    ) -> None:
        from openai import OpenAI

        self.client = OpenAI(base_url=base_url, api_key=api_key, max_retries=1)
        self.model, self.max_tokens, self.temperature = model, max_tokens, temperature

    @classmethod
    def from_spec(cls, target: str, **options) -> OpenAIController:
        model, sep, url = target.rpartition("@")
        if not sep or not model or not url:
            raise ControllerError(
                f"openai:{target}: expected openai:MODEL@URL, "
                "e.g. openai:Qwen/Qwen2.5-VL-7B-Instruct@http://localhost:8000/v1"
            )
        return cls(model, url, **options)

    def generate(self, messages: list[dict], tools: list[dict] | None) -> Generation:
        kwargs = {"tools": tools} if tools else {}
        resp = self.client.chat.completions.create(
            model=self.model,
            messages=to_openai_messages(messages),
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            **kwargs,
        )
        msg = resp.choices[0].message
        text = msg.content or ""
        calls = []
        for tc in msg.tool_calls or []:
            try:
                calls.append(ParsedCall(tc.function.name, json.loads(tc.function.arguments or "{}")))
            except json.JSONDecodeError as exc:
                calls.append(ParsedCall(tc.function.name, None, f"arguments are not valid JSON ({exc.msg})"))
        if calls:  # keep the transcript in the one format training uses
            text += "".join(
                f"\n<tool_call>{json.dumps({'name': c.name, 'arguments': c.arguments})}</tool_call>" for c in calls
            )
        else:
            calls = parse_tool_calls(text)
        usage = resp.usage
        return Generation(
            text=text.strip(),
            tool_calls=calls,
            tokens_in=getattr(usage, "prompt_tokens", 0) or 0,
            tokens_out=getattr(usage, "completion_tokens", 0) or 0,
        )
