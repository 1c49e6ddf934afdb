"""Batches stored SFT examples the way the agent renders them, with loss on assistant tokens only.

TRL's vision collator renders conversations without ``tools=``, so the tool schemas the agent
puts in the system turn would be missing; this collator renders with exactly the agent's
rendering (``agent.backends.hf.prepare_messages`` + the processor's chat template + the tool
schemas) and masks labels with TRL's own mechanism: ``return_assistant_tokens_mask`` over a
template with ``{% generation %}`` markers, TRL's patched training template
(``get_training_chat_template``) when the model's template lacks them. Training templates only
add the markers, so the tokens are the ones the agent's template produces.
"""

from __future__ import annotations

from typing import Any

import torch

from agent.backends.hf import prepare_messages
from memory.errors import FoveateError
from training.episodes import load_messages


def training_chat_template(processor) -> str | None:
    """A template with generation markers for ``processor``, or None when its own has them."""
    from trl.chat_template_utils import get_training_chat_template

    try:
        return get_training_chat_template(processor)
    except ValueError:
        raise FoveateError("the controller's chat template has no {% generation %} markers and TRL has no training "
                           "variant of it; add the markers around assistant content in chat_template.jinja") from None


class AgentChatCollator:
    """``[{"messages", "images"}, ...]`` -> input_ids, attention_mask, pixel inputs and labels (-100 off assistant turns)."""

    def __init__(self, processor, tools: list[dict]) -> None:
        self.processor, self.tools = processor, tools
        self.chat_template = training_chat_template(processor)

    def render(self, conversations: list[list[dict]]) -> dict[str, Any]:
        prepared = [prepare_messages(c, self.tools, self.processor) for c in conversations]
        tools = prepared[0][1]
        return self.processor.apply_chat_template(
            [m for m, _ in prepared], tools=tools, chat_template=self.chat_template, tokenize=True, return_dict=True,
            return_tensors="pt", return_assistant_tokens_mask=True,
            processor_kwargs={"padding": True, "padding_side": "right", "add_special_tokens": False})

    def __call__(self, examples: list[dict]) -> dict[str, Any]:
        out = self.render([load_messages(ex) for ex in examples])
        masks = torch.as_tensor(out.pop("assistant_masks"))
        if masks.sum() == 0:
            raise FoveateError("no assistant tokens found to train on: the chat template's {% generation %} markers "
                               "do not cover the assistant turns")
        labels = out["input_ids"].clone()
        labels[(out["attention_mask"] == 0) | (masks == 0)] = -100
        out["labels"] = labels
        return dict(out)
