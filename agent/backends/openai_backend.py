"""Any OpenAI-compatible server (vLLM, SGLang): native tool calls, images as data URLs.

``generate`` uses the blocking client; ``agenerate`` an ``AsyncOpenAI`` client (one per event
loop), so ``foveate batch --concurrency N`` keeps N requests in flight and the server's continuous
batching sees them together.

Transient failures (connection errors, timeouts, 5xx) are retried by the openai client itself
with exponential backoff; whatever still fails, or comes back malformed, becomes one ControllerError
line that names the server URL and the cause.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import weakref
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


DEFAULT_TIMEOUT_SECONDS = 120.0
# Tries per request, the first included; the client waits ~0.5 s, 1 s, ... (exponential, capped) between them.
DEFAULT_TRIES = 3


def _chain(exc: BaseException, limit: int = 10) -> list[BaseException]:
    """``exc`` and its causes (the async client wraps a refused connection four levels deep)."""
    out: list[BaseException] = []
    while exc is not None and len(out) < limit:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def _request_error(url: str, model: str, exc: Exception) -> ControllerError:
    """One line naming the server and the cause of a request that failed for good."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        why = "no reply before the timeout (raise --timeout, or check the server's load)"
    elif isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        refused = any(isinstance(e, ConnectionRefusedError) or "refused" in str(e).lower() for e in _chain(exc))
        why = (
            f"connection refused — is the server up? (vllm serve {model} --port PORT)"
            if refused
            else f"cannot connect ({' '.join(str(cause).split())[:200] or type(cause).__name__})"
        )
    elif isinstance(exc, openai.APIStatusError):
        body = " ".join((exc.response.text or "").split())[:200]
        why = f"HTTP {exc.status_code}" + (f": {body}" if body else "")
    else:  # a body that is not JSON, or JSON that is not a chat completion
        why = f"malformed response ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
    return ControllerError(f"controller {url}: {why}")


class OpenAIController(Controller):
    BACKEND_NAME: ClassVar[str] = "openai"
    OPTIONS: ClassVar[tuple[str, ...]] = ("max_tokens", "temperature", "timeout")

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str = "EMPTY",
        max_tokens: int = 512,
        temperature: float = 0.0,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        tries: int = DEFAULT_TRIES,
    ) -> None:
        from openai import OpenAI

        self.client = OpenAI(base_url=base_url, api_key=api_key, max_retries=tries - 1, timeout=timeout)
        self.model, self.base_url, self.max_tokens, self.temperature = model, base_url, max_tokens, temperature
        self._client_options = {"base_url": base_url, "api_key": api_key, "max_retries": tries - 1, "timeout": timeout}
        # event loop -> AsyncOpenAI: an async client's connections belong to the loop that made them
        self._async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @classmethod
    def check(cls, target: str) -> None:
        model, sep, url = target.rpartition("@")
        if not sep or not model or not url:
            raise ControllerError(
                f"openai:{target}: expected openai:MODEL@URL, "
                "e.g. openai:Qwen/Qwen2.5-VL-7B-Instruct@http://localhost:8000/v1"
            )

    @classmethod
    def from_spec(cls, target: str, **options) -> OpenAIController:
        cls.check(target)
        model, _, url = target.rpartition("@")
        return cls(model, url, **options)

    def _request(self, messages: list[dict], tools: list[dict] | None) -> dict:
        kwargs = {"tools": tools} if tools else {}
        return {
            "model": self.model,
            "messages": to_openai_messages(messages),
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            **kwargs,
        }

    @staticmethod
    def _first_message(resp):
        """The first choice's message and the usage of a completion; ValueError when it has none."""
        if isinstance(resp, str):  # the client hands back a non-JSON body (an HTML error page) as text
            raise ValueError(f"not JSON: {resp[:80]!r}")
        if not resp.choices:
            raise ValueError("no choices")
        msg = resp.choices[0].message
        if msg is None or not isinstance(msg.content, (str, type(None))):
            raise ValueError("the first choice has no message")
        return msg, resp.usage

    def _complete(self, messages: list[dict], tools: list[dict] | None):
        """The first choice's message and the usage, or ControllerError."""
        import openai

        try:
            return self._first_message(self.client.chat.completions.create(**self._request(messages, tools)))
        except (openai.APIError, ValueError, AttributeError, TypeError) as exc:
            raise _request_error(self.base_url, self.model, exc) from None

    def _async_client(self):
        from openai import AsyncOpenAI

        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = self._async_clients[loop] = AsyncOpenAI(**self._client_options)
        return client

    async def _acomplete(self, messages: list[dict], tools: list[dict] | None):
        import openai

        request = await asyncio.to_thread(self._request, messages, tools)  # JPEG encoding, off the event loop
        try:
            return self._first_message(await self._async_client().chat.completions.create(**request))
        except (openai.APIError, ValueError, AttributeError, TypeError) as exc:
            raise _request_error(self.base_url, self.model, exc) from None

    def generate(self, messages: list[dict], tools: list[dict] | None) -> Generation:
        return self._generation(*self._complete(messages, tools))

    async def agenerate(self, messages: list[dict], tools: list[dict] | None) -> Generation:
        return self._generation(*await self._acomplete(messages, tools))

    @staticmethod
    def _generation(msg, usage) -> Generation:
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
        return Generation(
            text=text.strip(),
            tool_calls=calls,
            tokens_in=getattr(usage, "prompt_tokens", 0) or 0,
            tokens_out=getattr(usage, "completion_tokens", 0) or 0,
        )
