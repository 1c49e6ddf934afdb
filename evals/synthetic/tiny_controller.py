"""A tiny Qwen2.5-VL-architecture controller built offline: random weights, a locally trained
byte-level BPE tokenizer and a chat template with tool support, saved with ``save_pretrained`` so
``--controller DIR`` exercises the same loading path as a real model."""

from __future__ import annotations

import re
from pathlib import Path

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# Added as ordinary (non-special) tokens so decoding keeps them, as Qwen's tokenizers do.
TAG_TOKENS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<answer>", "</answer>"]

# Qwen3-style template: tools in the system turn, tool results as user turns in <tool_response>.
CHAT_TEMPLATE = """{%- macro render(content) -%}
{%- if content is string -%}{{ content }}{%- else -%}
{%- for part in content -%}
{%- if part.type == 'image' or 'image' in part -%}<|vision_start|><|image_pad|><|vision_end|>
{%- elif part.type == 'text' -%}{{ part.text }}{%- endif -%}
{%- endfor -%}{%- endif -%}
{%- endmacro -%}
{%- if tools -%}<|im_start|>system
{% if messages[0].role == 'system' %}{{ render(messages[0].content) }}

{% endif %}# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{% for tool in tools %}{{ tool | tojson }}
{% endfor %}</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call><|im_end|>
{% elif messages[0].role == 'system' -%}<|im_start|>system
{{ render(messages[0].content) }}<|im_end|>
{% endif -%}
{%- for message in messages -%}
{%- if message.role == 'system' -%}
{%- elif message.role == 'tool' -%}
{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}<|im_start|>user
{% endif %}<tool_response>
{{ render(message.content) }}
</tool_response>
{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}<|im_end|>
{% else %}
{% endif -%}
{%- elif message.role == 'assistant' -%}<|im_start|>assistant
{% generation %}{{ render(message.content) }}
{%- if message.tool_calls -%}{%- for call in message.tool_calls -%}
<tool_call>
{"name": "{{ call.function.name }}", "arguments": {{ call.function.arguments | tojson }}}
</tool_call>{%- endfor -%}{%- endif -%}<|im_end|>{% endgeneration %}
{% else -%}<|im_start|>{{ message.role }}
{{ render(message.content) }}<|im_end|>
{% endif -%}
{%- endfor -%}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif -%}"""


def _corpus(tool_schemas_in_vocab: bool = False) -> list[str]:
    import json

    from foveate.agent.prompts import SYSTEM_PROMPT
    from foveate.tools.toolbox import tool_schemas

    words = (
        "red green blue yellow magenta cyan white star circle square triangle cross moving left right up down "
        "video question answer evidence seconds segment cut camera pan static keyframe clip zoom retrieve "
        "dense_sample start end fps num_frames query choice options duration overview frames budget"
    ).split()
    lines = [SYSTEM_PROMPT, CHAT_TEMPLATE]
    if tool_schemas_in_vocab:  # the tool block is most of every prompt, and of a small model's training time
        lines += [json.dumps(t, ensure_ascii=False) for t in tool_schemas()]
    lines += [
        f'{{"name": "zoom", "arguments": {{"start": {i}.0, "end": {i + 8}.5, "num_frames": 4}}}}'
        for i in range(0, 600, 7)
    ]
    lines += [f'{{"answer": "{w}", "evidence": [[{i}.0, {i + 4}.0]]}}' for i, w in enumerate(words * 3)]
    # Clip handles (c1, c2, ...) as retrieve prints them and zoom, dense_sample and the evidence take them.
    lines += [
        f"c{i} [0:{2 * i:02d}-0:{2 * i + 2:02d}) {2 * i}.0-{2 * i + 2}.0s score 0.{300 + 7 * i}\n"
        f"clip c{i} ({2 * i}.0-{2 * i + 2}.0s):\n"
        f'{{"name": "zoom", "arguments": {{"clip": "c{i}", "num_frames": {1 + i % 8}}}}}\n'
        f'{{"name": "dense_sample", "arguments": {{"clip": "c{i}", "fps": 2.0}}}}\n'
        f'{{"answer": "{words[i]}", "evidence": ["c{i}"]}}'
        for i in range(1, 21)
    ]
    lines += [" ".join(words[i:] + words[:i]) for i in range(len(words))]
    lines += [f"{m}:{s:02d} {m * 60 + s}.0-{m * 60 + s + 4}.5s" for m in range(60) for s in range(0, 60, 13)]
    return lines


def build_tiny_tokenizer(
    vocab_size: int = 1024, tool_schemas_in_vocab: bool = False, spaced_words: tuple[str, ...] = ()
):
    """A byte-level BPE tokenizer trained on the agent's prompts and formats, with Qwen's special tokens.

    ``spaced_words``: the space before any of these words is a token of its own, so the word is one
    token after a space (prose, options) and after a quote (a JSON string): a description's "a blue
    star" and an answer's ``"blue"`` then share the word's token, and copying one into the other is
    the copy of a token, not a mapping between two."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    if spaced_words:
        before = Regex(rf" (?=(?:{'|'.join(map(re.escape, spaced_words))})\b)")
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Split(before, behavior="isolated"), tok.pre_tokenizer]
        )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS + TAG_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,  # a second's work; its bars would sit between the pipeline's stages
    )
    tok.train_from_iterator(_corpus(tool_schemas_in_vocab), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
    fast.add_tokens(TAG_TOKENS)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def twin_token_pairs(tokenizer) -> list[tuple[int, int]]:
    """(id of `` word``, id of ``word``) for every word or number the vocabulary holds in both forms.

    A byte-level BPE writes a word after a space (prose, options, tool results) and after a quote (a
    JSON string: the answer, a query) as two unrelated tokens: "moving left" ends in `` left`` and
    ``{"answer": "left"}`` holds ``left``."""
    vocab = tokenizer.get_vocab()
    space = "\u0120"  # byte-level BPE's mark for a leading space
    return sorted(
        (i, vocab[t[1:]])
        for t, i in vocab.items()
        if t.startswith(space) and len(t) > 2 and t[1:].isalnum() and t[1:] in vocab
    )


def tie_twin_embeddings(model, tokenizer) -> int:
    """Give each ``word`` token the initial embedding of its `` word`` twin; returns the number of pairs.

    With tied input and output embeddings, a model that has learned to copy `` left`` from its context
    then writes ``left`` with the same circuit from its first step, so copying a word from prose into a
    JSON string (an answer naming the option a description names) does not have to be learned word by
    word. Training separates the twins where the context tells them apart."""
    import torch

    pairs = twin_token_pairs(tokenizer)
    weight = model.get_input_embeddings().weight
    with torch.no_grad():
        for spaced, bare in pairs:
            weight[bare] = weight[spaced]
    return len(pairs)


def build_tiny_controller(
    out_dir: str | Path,
    seed: int = 0,
    hidden_size: int = 64,
    layers: int = 2,
    vocab_size: int = 1024,
    tool_schemas_in_vocab: bool = False,
    twin_tokens: bool = False,
    spaced_words: tuple[str, ...] = (),
    vision_depth: int = 1,
    vision_hidden: int = 32,
    image_side: int = 112,
    patch_size: int = 14,
) -> Path:
    """Write a tiny Qwen2.5-VL model + processor to ``out_dir``; loadable with ``--controller out_dir``.

    ``twin_tokens``: start each word token and its space-prefixed twin (``left`` and `` left``) from one
    embedding (:func:`tie_twin_embeddings`). ``spaced_words``: see :func:`build_tiny_tokenizer`.

    ``vision_depth`` and ``vision_hidden``: blocks and width of the vision tower. ``image_side``: the
    image processor's pixel budget is ``image_side**2`` (Qwen's ``max_pixels``; a 160x120 frame is
    seen at 112x84, 12 tokens, with 112 and at 168x112, 24 tokens, with 168). ``patch_size``: pixels a
    side of a vision patch (2x2 patches merge into one token).

    ``vocab_size``: of the BPE tokenizer. ``tool_schemas_in_vocab``: train it on the tool schemas
    too, so the fixed prompt takes fewer tokens (with 2,048 tokens: 700 instead of 1,150); the
    merges it spends on them are taken from numbers and words when the vocabulary is small.
    """
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    out_dir = Path(out_dir)
    tokenizer = build_tiny_tokenizer(vocab_size, tool_schemas_in_vocab, spaced_words)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    heads = max(2, hidden_size // 32)
    half = hidden_size // heads // 2  # mrope sections (temporal, height, width) must sum to head_dim / 2
    hw = 3 * half // 8
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": hidden_size,
            "intermediate_size": hidden_size * 2,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": max(1, heads // 2),
            "max_position_embeddings": 8192,
            "rope_parameters": {
                "rope_type": "default",
                "mrope_section": [half - 2 * hw, hw, hw],
                "rope_theta": 10000.0,
            },
            "tie_word_embeddings": True,
            "bos_token_id": None,
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": vision_depth,
            "hidden_size": vision_hidden,
            "intermediate_size": vision_hidden * 2,
            "num_heads": max(2, vision_hidden // 16),
            "out_hidden_size": hidden_size,
            "patch_size": patch_size,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "fullatt_block_indexes": list(range(vision_depth)),
            "window_size": 112,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    if twin_tokens:
        tie_twin_embeddings(model, tokenizer)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    image_processor = Qwen2VLImageProcessor(
        min_pixels=56 * 56, max_pixels=image_side * image_side, patch_size=patch_size, merge_size=2
    )
    processor = Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(patch_size=patch_size, merge_size=2),
        chat_template=CHAT_TEMPLATE,
    )
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir
