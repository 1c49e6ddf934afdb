"""The training forward pass of agent episodes: the shared prompt once, the lm head on labelled positions.

Every agent episode of a batch starts with the same system prompt and tool block (about 1,100 tokens
of the tiny controller's ~1,900), and only a tenth of its positions carry a label. One forward over
the padded batch computes that prompt once per example and the vocabulary projection at every
position; :func:`forward_labelled` computes the prompt once per batch, lets the rest of each example
attend to its keys and values, and runs the lm head on the positions that predict a label. The
logits there are those of the padded forward (tests/test_pretrain.py; through the SFT trainer,
tests/test_training.py); pretraining and SFT train on them. An SFT step of the cpu preset on 2 cores:
1.20 s with TRL's padded forward, 0.36 s with this one (``python -m foveate.training.sft_step RUN``).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import lru_cache

import torch

from foveate.training.collator import PAD_VALUES

MIN_SHARED_PREFIX = 32  # tokens; below this one forward over the whole batch costs no more
# Tokens after the prefix from which a CPU forwards examples one at a time: caption batches (~60 tokens) take
# 0.13 s a step of 16 as a batch and 0.21 s one by one; agent episodes (~500) 8% less one by one.
ONE_BY_ONE_LENGTH = 256


def pad(values: list[torch.Tensor], value: int) -> torch.Tensor:
    """Right-pad 1-D tensors to the longest and stack them."""
    longest = max(len(v) for v in values)
    return torch.stack([torch.nn.functional.pad(v, (0, longest - len(v)), value=value) for v in values])


def collate(inputs: list[dict[str, torch.Tensor]], pad_id: int) -> dict[str, torch.Tensor]:
    """Rendered examples (per-token fields without a batch dimension) -> one right-padded batch."""
    batch = {}
    for key in inputs[0]:
        values = [x[key] for x in inputs]
        if key in PAD_VALUES:
            batch[key] = pad(values, pad_id if PAD_VALUES[key] is None else PAD_VALUES[key])
        else:
            batch[key] = torch.cat(values)
    return batch


def _unwrapped(model):
    """The transformers model under a PEFT wrapper (its rope index and forward signature)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


@lru_cache(maxsize=4)
def _cache_argument(model_class: type) -> str:
    """transformers 5 calls the cache argument ``cache``, 4.x ``past_key_values``."""
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


@dataclass
class Scored:
    """Logits of one batch at the positions whose next token is labelled, flattened (see :func:`forward_labelled`)."""

    logits: torch.Tensor  # (K, V): one row per True of ``scored``
    scored: torch.Tensor  # (B, L) bool over positions ``offset..offset+L`` of the right-padded items
    ids: torch.Tensor  # (B, L) their token ids
    labels: torch.Tensor  # (B, L) their labels (-100 off assistant tokens and on padding)
    offset: int

    def next_tokens(self) -> torch.Tensor:
        """(K,) the tokens the rows of ``logits`` predict."""
        return self.labels[:, 1:][self.scored[:, :-1]]

    def rows(self) -> torch.Tensor:
        """(B, L) long: the row of ``logits`` at each scored position, -1 elsewhere."""
        rows = torch.full(self.scored.shape, -1, dtype=torch.long)
        rows[self.scored] = torch.arange(int(self.scored.sum()))
        return rows


def forward_labelled(model, inputs: list[dict[str, torch.Tensor]], pad_id: int, each: bool | None = None) -> Scored:
    """The batch's logits at the positions whose next token is labelled.

    ``inputs`` are rendered examples (training/collator.py ``AgentChatCollator.render``): per-token
    fields without a batch dimension, ``labels`` -100 off assistant tokens. The examples' common token
    prefix before the first label and the first image is computed once and its keys and values are
    repeated over the batch; the rest takes its slice of the multimodal (mrope) positions of the
    whole sequence, passed explicitly, so deltas the model kept from an earlier image batch do not
    apply. The lm head runs on the scored positions alone (``logits_to_keep``).

    ``each``: after the shared prefix, forward the examples one at a time rather than as one padded
    batch. On a CPU, where attention's arithmetic sets the pace, that saves the padded positions and,
    without a prefix, lets attention skip the masked half (no padding mask: SDPA's causal kernel);
    an accelerator prefers the batch. None: one at a time on a CPU when the longest example runs
    :data:`ONE_BY_ONE_LENGTH` tokens or more past the prefix.
    """
    from transformers import DynamicCache

    base = _unwrapped(model)
    ids = [x["input_ids"] for x in inputs]
    first_label = min(int((x["labels"] != -100).nonzero()[0]) for x in inputs)
    m = min(min(len(i) for i in ids), first_label - 1)
    n = int(torch.stack([i[:m] == ids[0][:m] for i in ids]).all(0).int().cumprod(0).sum())
    image_token = base.config.image_token_id
    n = min([n, *(int((i == image_token).nonzero()[0]) for i in ids if (i == image_token).any())])
    if n < MIN_SHARED_PREFIX:
        n = 0
    labels = pad([x["labels"][n:] for x in inputs], -100)
    scored = torch.zeros_like(labels, dtype=torch.bool)
    scored[:, :-1] = labels[:, 1:] != -100
    if each is None:
        each = ids[0].device.type == "cpu" and labels.shape[1] >= ONE_BY_ONE_LENGTH
    groups = [[x] for x in inputs] if each else [inputs]
    prefix = _prefix(model, ids[0][:n]) if n else None
    logits = []
    for group, keep in zip(groups, scored.split(1) if each else [scored]):
        batch = {k: v for k, v in collate(group, pad_id).items() if k != "labels"}
        keep = keep[:, : batch["input_ids"].shape[1] - n]
        if prefix is None:
            # Text without a prefix needs no attention mask (right padding): SDPA's causal kernel then applies.
            batch = batch if "pixel_values" in batch else {"input_ids": batch["input_ids"]}
            logits.append(model(**batch, logits_to_keep=keep).logits)
            continue
        cache = DynamicCache(prefix)
        cache.batch_repeat_interleave(len(group))
        logits.append(
            model(
                **_after_prefix(base, batch, n),
                use_cache=True,
                logits_to_keep=keep,
                **{_cache_argument(type(base)): cache},
            ).logits
        )
    logits = torch.cat([x.reshape(-1, x.shape[-1]) for x in logits])
    return Scored(logits, scored, pad([i[n:] for i in ids], pad_id), labels, n)


def _prefix(model, ids: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Keys and values of each layer over the shared prefix ``ids`` (one sequence)."""
    from transformers import DynamicCache

    cache = DynamicCache()
    model(input_ids=ids[None], use_cache=True, logits_to_keep=1, **{_cache_argument(type(_unwrapped(model))): cache})
    return [(layer.keys, layer.values) for layer in cache.layers]


def _after_prefix(base, batch: dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    """Model inputs for the tokens after the first ``n`` of a collated batch: their ids, their slice of the
    whole sequences' (mrope) positions, and the batch's images, which all lie past the prefix."""
    ids = batch["input_ids"]
    if "pixel_values" not in batch:
        positions = torch.arange(ids.shape[1], device=ids.device).view(1, 1, -1).expand(3, len(ids), -1)
        return {"input_ids": ids[:, n:], "position_ids": positions[:, :, n:]}
    positions, _ = base.model.get_rope_index(
        ids,
        image_grid_thw=batch["image_grid_thw"],
        attention_mask=batch["attention_mask"],
        mm_token_type_ids=batch.get("mm_token_type_ids"),
    )
    return {
        "input_ids": ids[:, n:],
        "position_ids": positions[:, :, n:],
        "pixel_values": batch["pixel_values"],
        "image_grid_thw": batch["image_grid_thw"],
    }
