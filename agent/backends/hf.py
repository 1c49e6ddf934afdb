"""transformers backend: ``AutoModelForImageTextToText`` + ``AutoProcessor`` with the model's own chat template."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import weakref
from pathlib import Path
from typing import ClassVar

from foveate.agent.backends.base import Controller, ControllerError, Generation
from foveate.agent.backends.templates import ensure_tool_template
from foveate.agent.toolcalls import parse_tool_calls

logger = logging.getLogger(__name__)

DEFAULT_CONTROLLER = "Qwen/Qwen2.5-VL-7B-Instruct"
_STRIP = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>")


def template_supports_tools(processor) -> bool:
    template = (
        getattr(processor, "chat_template", None)
        or getattr(getattr(processor, "tokenizer", None), "chat_template", "")
        or ""
    )
    return "tools" in (template if isinstance(template, str) else json.dumps(template))


def prepare_messages(
    messages: list[dict], tools: list[dict] | None, processor
) -> tuple[list[dict], list[dict] | None]:
    """Messages and tools as the template wants them.

    Templates without tool support get the schemas written into the system turn in the Hermes
    format Qwen models are trained on, and tool results as user turns. (Qwen2-VL / Qwen2.5-VL
    processors are given a tool-calling template when loaded, see agent/backends/templates.py.)
    """
    if not tools or template_supports_tools(processor):
        return messages, tools
    schema_text = (
        "\n\n# Tools\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
        + "\n".join(json.dumps(t) for t in tools)
        + "\n</tools>"
    )
    out = []
    for m in messages:
        if m["role"] == "system":
            m = {"role": "system", "content": list(m["content"]) + [{"type": "text", "text": schema_text}]}
        elif m["role"] == "tool":
            m = {
                "role": "user",
                "content": [{"type": "text", "text": "<tool_response>\n"}]
                + list(m["content"])
                + [{"type": "text", "text": "\n</tool_response>"}],
            }
        out.append(m)
    return out, None


class HFController(Controller):
    BACKEND_NAME: ClassVar[str] = "hf"
    OPTIONS: ClassVar[tuple[str, ...]] = ("max_new_tokens", "temperature", "max_batch")

    def __init__(
        self,
        model_id: str,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        trust_remote_code: bool = False,
        device: str | None = None,
        max_batch: int = 16,
    ) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        if not Path(model_id).is_dir() and ("/" not in model_id or model_id.startswith((".", "/"))):
            raise ControllerError(f"{model_id}: no such model directory")
        try:
            self.processor = AutoProcessor.from_pretrained(model_id, trust_remote_code=trust_remote_code)
            dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
            self.model = AutoModelForImageTextToText.from_pretrained(
                model_id, dtype=dtype, trust_remote_code=trust_remote_code
            )
        except OSError as exc:
            why = "offline and not in the local cache" if offline else str(exc).splitlines()[0][:200]
            raise ControllerError(
                f"{model_id}: cannot load the controller ({why}); pass --controller DIR with a "
                "local model directory (e.g. from `foveate synth models OUT`)"
            ) from None
        if ensure_tool_template(self.processor):
            logger.info(
                "%s: Qwen-VL chat template without tool support; using the tool-calling variant "
                "(agent.backends.templates)",
                model_id,
            )
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()
        self.max_new_tokens, self.temperature, self.max_batch = max_new_tokens, temperature, max_batch
        self._batchers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> _Batcher

    @classmethod
    def check(cls, target: str) -> None:
        from foveate.memory.hub import cached_file, hub_usable, offline

        if Path(target).is_dir():
            if not (Path(target) / "config.json").is_file():
                raise ControllerError(f"{target}: no config.json in this folder (not a model directory)")
            return
        if "/" not in target or target.startswith((".", "/", "~")):
            raise ControllerError(f"{target}: no such model directory")
        if not cached_file(target, "config.json") and not hub_usable():
            why = "HF_HUB_OFFLINE is set" if offline() else "the Hugging Face hub is unreachable"
            raise ControllerError(
                f"{target}: the controller is not in the local Hugging Face cache and {why}; pass --controller DIR "
                "with a local model directory (e.g. from `foveate synth models OUT`)"
            )

    def generate(self, messages: list[dict], tools: list[dict] | None) -> Generation:
        return self.generate_batch([messages], tools)[0]

    def generate_batch(self, conversations: list[list[dict]], tools: list[dict] | None) -> list[Generation]:
        """Continue several conversations in one ``generate`` call (left-padded); same tools for all."""
        import torch

        prepared = [prepare_messages(messages, tools, self.processor) for messages in conversations]
        tools_arg = prepared[0][1]
        batch = [msgs for msgs, _ in prepared]
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        inputs = self.processor.apply_chat_template(
            batch if len(batch) > 1 else batch[0],
            tools=tools_arg,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            # left padding: the new tokens of every row follow its prompt directly
            processor_kwargs={"padding": True, "padding_side": "left"} if len(batch) > 1 else None,
        ).to(self.device)
        kwargs = {"max_new_tokens": self.max_new_tokens, "do_sample": self.temperature > 0}
        if self.temperature > 0:
            kwargs["temperature"] = self.temperature
        with torch.inference_mode():
            out = self.model.generate(**inputs, **kwargs)
        prompt_len = inputs["input_ids"].shape[1]
        pad = getattr(tokenizer, "pad_token_id", None)
        results = []
        for k in range(len(batch)):
            new = out[k, prompt_len:]
            if pad is not None and len(batch) > 1:
                new = new[new != pad]  # a row that finished early is padded to the longest
            text = self.processor.decode(new, skip_special_tokens=False)
            for s in _STRIP:
                text = text.replace(s, "")
            text = text.strip()
            results.append(
                Generation(
                    text=text,
                    tool_calls=parse_tool_calls(text),
                    tokens_in=int(inputs["attention_mask"][k].sum()),
                    tokens_out=int(len(new)),
                )
            )
        return results

    async def agenerate(self, messages: list[dict], tools: list[dict] | None) -> Generation:
        """Requests that arrive while the model is busy are generated together, as one batch, when it is free."""
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None:
            batcher = self._batchers[loop] = _Batcher(self.generate_batch, self.max_batch)
        return await batcher.submit(messages, tools)


class _Batcher:
    """Collects concurrent requests on one event loop and runs them as batches, one batch at a time, in a
    worker thread. A batch takes the oldest request and every waiting one with the same tools (up to
    ``max_batch``), so nothing waits for a batch to fill: a lone request runs alone."""

    def __init__(self, generate_batch, max_batch: int) -> None:
        self.generate_batch, self.max_batch = generate_batch, max_batch
        self.waiting: list[tuple[list[dict], list[dict] | None, asyncio.Future]] = []
        self.running: asyncio.Task | None = None

    async def submit(self, messages: list[dict], tools: list[dict] | None) -> Generation:
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((messages, tools, future))
        if self.running is None or self.running.done():
            self.running = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let the requests made in the same tick join the first batch
        while self.waiting:
            tools = self.waiting[0][1]
            batch = [w for w in self.waiting if w[1] == tools][: self.max_batch]
            self.waiting = [w for w in self.waiting if all(w is not b for b in batch)]
            try:
                gens = await asyncio.to_thread(self.generate_batch, [m for m, _, _ in batch], tools)
            except Exception as exc:  # every request of the batch gets the error
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, _, future), gen in zip(batch, gens):
                if not future.done():
                    future.set_result(gen)
