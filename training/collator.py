"""Batches stored SFT examples the way the agent renders them, with loss on assistant tokens only.

TRL's vision collator renders conversations without ``tools=``, so the tool schemas the agent
puts in the system turn would be missing; this collator renders with exactly the agent's
rendering (``agent.backends.hf.prepare_messages`` + the processor's chat template + the tool
schemas) and masks labels with TRL's own mechanism: ``return_assistant_tokens_mask`` over a
template with ``{% generation %}`` markers, TRL's patched training template
(``get_training_chat_template``) when the model's template lacks them. Training templates only
add the markers, so the tokens are the ones the agent's template produces.

Examples are rendered one by one and padded here (right padding), optionally keeping rendered
examples in memory: rendering (image processing, mask alignment) costs more than a tiny model's
step, and small datasets are seen for many epochs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from foveate.agent.backends.hf import prepare_messages
from foveate.memory.errors import FoveateError
from foveate.training.episodes import load_messages

# Per-token fields, padded to the batch's longest sequence with these values; other fields
# (pixel values, grids) concatenate.
PAD_VALUES = {"input_ids": None, "attention_mask": 0, "labels": -100, "mm_token_type_ids": 0, "token_type_ids": 0}


def training_chat_template(processor) -> str | None:
    """A template with generation markers for ``processor``, or None when its own has them."""
    from trl.chat_template_utils import get_training_chat_template

    try:
        return get_training_chat_template(processor)
    except ValueError:
        raise FoveateError(
            "the controller's chat template has no {% generation %} markers and TRL has no training "
            "variant of it; add the markers around assistant content in chat_template.jinja"
        ) from None


def _tensor(values) -> torch.Tensor:
    """A token-level list as a tensor: through numpy, several times faster than torch from a list of ints."""
    return torch.from_numpy(np.asarray(values)) if isinstance(values, list) else torch.as_tensor(values)


class AgentChatCollator:
    """``[{"messages", "images"}, ...]`` -> input_ids, attention_mask, pixel inputs and labels
    (-100 off assistant turns)."""

    def __init__(self, processor, tools: list[dict], cache: bool = False, keep_rendered: bool = False) -> None:
        self.processor, self.tools = processor, tools
        self.keep_rendered = keep_rendered  # also return the unpadded examples, as "rendered" (training/prefix.py)
        self.chat_template = training_chat_template(processor)
        self.pad_id = processor.tokenizer.pad_token_id
        self._cache: dict[str, dict[str, torch.Tensor]] | None = {} if cache else None

    def render(self, messages: list[dict]) -> dict[str, torch.Tensor]:
        """One conversation as model inputs (no batch dimension on per-token fields) with its labels.

        The processor is called with ``return_tensors=None`` (pixel inputs come back as tensors all
        the same): with tensors, transformers aligns the assistant mask by walking token offsets one
        tensor element at a time (~40 ms for a 1,500-token episode with images, ~5 times the rest of
        the rendering); with lists the same tokens and mask come out at once.
        """
        messages, tools = prepare_messages(messages, self.tools, self.processor)
        out = self.processor.apply_chat_template(
            [messages],
            tools=tools,
            chat_template=self.chat_template,
            tokenize=True,
            return_dict=True,
            return_tensors=None,
            return_assistant_tokens_mask=True,
            processor_kwargs={"add_special_tokens": False},
        )
        mask = _tensor(out.pop("assistant_masks")[0])
        if mask.sum() == 0:
            raise FoveateError(
                "no assistant tokens to train on: the chat template's {% generation %} markers do not "
                "cover the assistant turns"
            )
        item = {k: _tensor(v[0]) if k in PAD_VALUES else torch.as_tensor(v) for k, v in out.items()}
        item["labels"] = torch.where(mask.bool(), item["input_ids"], -100)
        return item

    def _item(self, example: dict) -> dict[str, torch.Tensor]:
        if self._cache is None:
            return self.render(load_messages(example))
        key = example["messages"] + "\0" + "\0".join(example["images"])
        if key not in self._cache:
            self._cache[key] = self.render(load_messages(example))
        return self._cache[key]

    def __call__(self, examples: list[dict]) -> dict[str, Any]:
        items = [self._item(ex) for ex in examples]
        longest = max(len(it["input_ids"]) for it in items)
        batch = {}
        for key in items[0]:
            values = [it[key] for it in items]
            if key in PAD_VALUES:
                pad = self.pad_id if PAD_VALUES[key] is None else PAD_VALUES[key]
                batch[key] = torch.stack(
                    [torch.nn.functional.pad(v, (0, longest - len(v)), value=pad) for v in values]
                )
            else:
                batch[key] = torch.cat(values)
        if self.keep_rendered:
            batch["rendered"] = items
        return batch
