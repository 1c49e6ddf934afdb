"""transformers backend: ``AutoModelForImageTextToText`` + ``AutoProcessor`` with the model's own chat template."""

from __future__ import annotations

import json
import logging
import os
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
    OPTIONS: ClassVar[tuple[str, ...]] = ("max_new_tokens", "temperature")

    def __init__(
        self,
        model_id: str,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        trust_remote_code: bool = False,
        device: str | None = None,
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
        self.max_new_tokens, self.temperature = max_new_tokens, temperature

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
        import torch

        msgs, tools_arg = prepare_messages(messages, tools, self.processor)
        inputs = self.processor.apply_chat_template(
            msgs, tools=tools_arg, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
        ).to(self.device)
        kwargs = {"max_new_tokens": self.max_new_tokens, "do_sample": self.temperature > 0}
        if self.temperature > 0:
            kwargs["temperature"] = self.temperature
        with torch.inference_mode():
            out = self.model.generate(**inputs, **kwargs)
        new = out[0, inputs["input_ids"].shape[1] :]
        text = self.processor.decode(new, skip_special_tokens=False)
        for s in _STRIP:
            text = text.replace(s, "")
        text = text.strip()
        return Generation(
            text=text,
            tool_calls=parse_tool_calls(text),
            tokens_in=int(inputs["input_ids"].shape[1]),
            tokens_out=int(len(new)),
        )
