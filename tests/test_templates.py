"""Qwen2-VL / Qwen2.5-VL controllers get a tool-calling chat template that TRL's GRPO accepts and that
renders the agent's conversations in Qwen's Hermes tool format, identically at training and inference."""

import pytest
from PIL import Image

from foveate.agent.backends.templates import QWEN_VL_TOOLS_TEMPLATE, ensure_tool_template
from foveate.tools.toolbox import tool_schemas


@pytest.fixture(scope="module")
def qwen_vl_processor(tmp_path_factory):
    """The tiny controller's processor with Qwen2.5-VL's released chat template (as TRL ships it)."""
    from transformers import AutoProcessor
    from trl.chat_template_utils import qwen2_5_vl_chat_template

    from foveate.evals.synthetic.tiny_controller import build_tiny_controller

    path = build_tiny_controller(tmp_path_factory.mktemp("qwen_vl") / "controller")
    processor = AutoProcessor.from_pretrained(path)
    processor.chat_template = processor.tokenizer.chat_template = qwen2_5_vl_chat_template
    processor.save_pretrained(path)
    return path


def _load(path):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(path)


def _conversation():
    image = Image.new("RGB", (56, 56), (200, 30, 30))
    return [
        {"role": "system", "content": [{"type": "text", "text": "You answer questions about videos."}]},
        {"role": "user", "content": [{"type": "text", "text": "What is red?"}, {"type": "image", "image": image}]},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "text",
                    "text": '<tool_call>{"name": "zoom", "arguments": {"start": 1, "end": 2}}</tool_call>',
                }
            ],
        },
        {"role": "tool", "content": [{"type": "text", "text": "zoom 1.0-2.0s"}, {"type": "image", "image": image}]},
    ]


def test_the_released_template_cannot_call_tools_and_the_replacement_can(qwen_vl_processor):
    from trl.chat_template_utils import is_chat_template_prefix_preserving, supports_tool_calling

    processor = _load(qwen_vl_processor)
    assert not supports_tool_calling(processor)  # why TRL's GRPO refuses Qwen2.5-VL as released
    assert ensure_tool_template(processor)
    assert (
        processor.chat_template == QWEN_VL_TOOLS_TEMPLATE
        and processor.tokenizer.chat_template == QWEN_VL_TOOLS_TEMPLATE
    )
    assert supports_tool_calling(processor) and is_chat_template_prefix_preserving(processor)
    assert not ensure_tool_template(processor)  # idempotent


def test_tool_conversations_render_in_the_hermes_format(qwen_vl_processor):
    processor = _load(qwen_vl_processor)
    ensure_tool_template(processor)
    text = processor.apply_chat_template(
        _conversation(), tools=tool_schemas(), tokenize=False, add_generation_prompt=True
    )
    assert text.startswith("<|im_start|>system\nYou answer questions about videos.\n\n# Tools\n")
    for schema in tool_schemas():
        assert f'"name": "{schema["function"]["name"]}"' in text
    assert (
        "<|im_start|>user\n<tool_response>\nzoom 1.0-2.0s<|vision_start|><|image_pad|><|vision_end|>\n"
        "</tool_response><|im_end|>\n" in text
    )
    assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == 2
    assert text.endswith("<|im_start|>assistant\n")


def test_without_tools_the_replacement_renders_like_the_released_template(qwen_vl_processor):
    from trl.chat_template_utils import qwen2_5_vl_chat_template

    released, ours = _load(qwen_vl_processor), _load(qwen_vl_processor)
    ensure_tool_template(ours)
    plain = _conversation()[:3]
    assert released.chat_template == qwen2_5_vl_chat_template
    for messages in (plain, plain[1:]):
        assert ours.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        ) == released.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def test_sft_masks_exactly_the_assistant_turn(qwen_vl_processor):
    from foveate.agent.backends.hf import prepare_messages
    from foveate.training.collator import AgentChatCollator

    processor = _load(qwen_vl_processor)
    ensure_tool_template(processor)
    messages = _conversation()[:3]
    item = AgentChatCollator(processor, tool_schemas()).render(messages)
    target = processor.tokenizer.decode(item["input_ids"][item["labels"] != -100])
    assert target == messages[2]["content"][0]["text"] + "<|im_end|>\n"
    assert prepare_messages(messages, tool_schemas(), processor)[1] is not None  # tools go to the template
