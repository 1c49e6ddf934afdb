"""A tool-calling chat template for Qwen2-VL / Qwen2.5-VL, whose own templates ignore ``tools=``.

Qwen2.5-VL's released template renders no tool schemas and no ``tool`` role, so TRL's GRPOTrainer
refuses it for tool-calling rollouts ("does not support tool calling"), and an agent would have
to splice the schemas into its prompts by hand. This template is Qwen2.5-VL's vision rendering
with the tool format of Qwen2.5's text template (the Hermes format Qwen models are trained on:
schemas in ``<tools>`` in the system turn, calls in ``<tool_call>``, results in a user turn inside
``<tool_response>``), plus ``{% generation %}`` markers around assistant turns so SFT can mask
the loss to them. Installed on the processor when a controller is loaded for inference or for
training, and saved with trained checkpoints, so every stage renders the same tokens.
"""

from __future__ import annotations

QWEN_VL_TOOLS_TEMPLATE = r"""{%- macro render(content) -%}
{%- if content is string -%}{{ content }}
{%- elif content is not none -%}{%- for part in content -%}
{%- if part['type'] == 'image' or 'image' in part or 'image_url' in part -%}<|vision_start|><|image_pad|><|vision_end|>
{%- elif part['type'] == 'video' or 'video' in part -%}<|vision_start|><|video_pad|><|vision_end|>
{%- elif 'text' in part -%}{{ part['text'] }}
{%- endif -%}{%- endfor -%}{%- endif -%}
{%- endmacro -%}
{%- if tools -%}
{{- '<|im_start|>system\n' -}}
{%- if messages[0]['role'] == 'system' -%}{{- render(messages[0]['content']) -}}{%- else -%}{{- 'You are a helpful assistant.' -}}{%- endif -%}
{{- '\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>' -}}
{%- for tool in tools -%}{{- '\n' -}}{{- tool | tojson -}}{%- endfor -%}
{{- '\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' -}}
{%- elif messages[0]['role'] == 'system' -%}
{{- '<|im_start|>system\n' + render(messages[0]['content']) + '<|im_end|>\n' -}}
{%- else -%}
{{- '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' -}}
{%- endif -%}
{%- for message in messages -%}
{%- if message['role'] == 'system' -%}
{%- if not loop.first -%}{{- '<|im_start|>system\n' + render(message['content']) + '<|im_end|>\n' -}}{%- endif -%}
{%- elif message['role'] == 'assistant' -%}
{{- '<|im_start|>assistant\n' -}}
{%- generation -%}
{{- render(message['content']) -}}
{%- if message['tool_calls'] is defined and message['tool_calls'] -%}
{%- for tool_call in message['tool_calls'] -%}
{%- if tool_call['function'] is defined -%}{%- set tool_call = tool_call['function'] -%}{%- endif -%}
{{- '\n<tool_call>\n{"name": "' + tool_call['name'] + '", "arguments": ' + (tool_call['arguments'] | tojson) + '}\n</tool_call>' -}}
{%- endfor -%}
{%- endif -%}
{{- '<|im_end|>\n' -}}
{%- endgeneration -%}
{%- elif message['role'] == 'tool' -%}
{%- if loop.first or messages[loop.index0 - 1]['role'] != 'tool' -%}{{- '<|im_start|>user' -}}{%- endif -%}
{{- '\n<tool_response>\n' + render(message['content']) + '\n</tool_response>' -}}
{%- if loop.last or messages[loop.index0 + 1]['role'] != 'tool' -%}{{- '<|im_end|>\n' -}}{%- endif -%}
{%- else -%}
{{- '<|im_start|>' + message['role'] + '\n' + render(message['content']) + '<|im_end|>\n' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}"""


def _template(processor) -> str:
    template = getattr(processor, "chat_template", None) or getattr(
        getattr(processor, "tokenizer", None), "chat_template", None
    )
    return template if isinstance(template, str) else ""


def is_qwen_vl_template_without_tools(processor) -> bool:
    """Qwen2-VL / Qwen2.5-VL's released template (ChatML with vision pads, no ``tools``)."""
    template = _template(processor)
    return "<|im_start|>" in template and "<|vision_start|>" in template and "tools" not in template


def ensure_tool_template(processor) -> bool:
    """Give a Qwen2-VL / Qwen2.5-VL processor the tool-calling template; True when it was replaced."""
    if not is_qwen_vl_template_without_tools(processor):
        return False
    processor.chat_template = QWEN_VL_TOOLS_TEMPLATE
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is not None and tokenizer is not processor:
        tokenizer.chat_template = QWEN_VL_TOOLS_TEMPLATE
    return True
