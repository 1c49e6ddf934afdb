"""The controller's prompt: one builder used by the agent loop, SFT data and the GRPO environment."""

from __future__ import annotations

from foveate.agent.answer import LETTERS
from foveate.memory.blocks import ContentBlock, text_block
from foveate.memory.overview import format_time
from foveate.memory.video_memory import VideoMemory
from foveate.tools.toolbox import tool_signatures

# The tool lines come from the tools' schemas (the same text the chat template's tool block shows),
# so a change to a tool's signature or docstring changes the prompt, and the schema snapshot test sees it.
SYSTEM_PROMPT = (
    """You answer questions about a long video. You first see a cheap overview: a table of \
segments with times and motion, and a few keyframes. Look closer only where the question points, \
using the tools:
"""
    + tool_signatures()
    + """
retrieve names the clips it returns c1, c2, ... (numbered across the question); zoom, dense_sample and \
the answer's evidence accept these handles in place of seconds, e.g. {"clip": "c2"}. Frames are limited, \
so spend them where they matter.

To call a tool, write exactly one line:
<tool_call>{"name": "zoom", "arguments": {"start": 12.0, "end": 20.0, "num_frames": 4}}</tool_call>

When you can answer, write exactly:
<answer>{"answer": "short answer", "evidence": [[start_seconds, end_seconds]]}</answer>
With options, the answer is one option's text as written, which picks that option (or add "choice": \
"B" to pick by letter). When the options are time spans, the answer may be a clip's handle or its times, \
which picks the option it overlaps most. Evidence lists the time spans, in seconds, or the handles of the clips that \
show the answer, e.g. ["c2", [30.0, 34.5]]."""
)

BUDGET_EXHAUSTED = "No more tool calls are allowed. Give your final answer now, in the <answer> format."


def question_text(question: str, options: list[str] | None, duration_seconds: float) -> str:
    lines = [
        f"Video duration: {format_time(duration_seconds)} ({duration_seconds:.1f} seconds).",
        f"Question: {question}",
    ]
    if options:
        lines.append("Options:")
        lines += [f"{LETTERS[i]}. {opt}" for i, opt in enumerate(options)]
    return "\n".join(lines)


def first_user_content(
    question: str, options: list[str] | None, memory: VideoMemory, max_images: int = 8, max_chars: int = 3000
) -> list[ContentBlock]:
    """The first user turn: question, options, duration, then the overview blocks."""
    return [text_block(question_text(question, options, memory.duration_seconds))] + memory.overview.render(
        max_images, max_chars
    )


def initial_messages(
    question: str, options: list[str] | None, memory: VideoMemory, max_images: int = 8, max_chars: int = 3000
) -> list[dict]:
    """``[system, user]`` messages that start every episode."""
    return [
        {"role": "system", "content": [text_block(SYSTEM_PROMPT)]},
        {"role": "user", "content": first_user_content(question, options, memory, max_images, max_chars)},
    ]
