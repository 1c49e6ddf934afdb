"""Tool-free baselines at a fixed frame budget, with the same backend and answer format.

``uniform``: N evenly spaced frames. ``retrieval``: the frames of the top-N clips retrieved
for the question text.

Two ways to show the frames (``baseline_format``):

- ``prompt``: one user turn holding the question and the N frames, and an instruction to answer
  without tools; what a model tuned for video QA in general expects.
- ``episode``: the agent's own episode (its prompt and overview), opened by the tool calls that
  fetch exactly those frames, written for the controller: ``zoom`` calls of up to 8 frames over
  consecutive windows of the video (uniform), a one-frame ``zoom`` on each retrieved clip
  (retrieval, each frame at its clip's middle). The controller then writes the answer. A
  controller trained only on agent episodes (SFT, GRPO) has never seen the ``prompt`` format and
  may write a tool call there instead of an answer; in this format the baselines and the agent
  differ only in who chose the frames. The frame budget is N + 1: a turn with no frame left is
  forced (rendered without tools, a prompt those controllers never saw), so one frame stays for
  a call the controller may still make.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from foveate.agent.answer import parse_answer
from foveate.agent.backends.base import Controller, Generation
from foveate.agent.batch import BASELINE_FORMATS
from foveate.agent.config import AgentConfig
from foveate.agent.graph import _fallback_answer, answer_question, answer_question_async
from foveate.agent.prompts import SYSTEM_PROMPT, question_text
from foveate.agent.toolcalls import format_tool_call, parse_tool_calls
from foveate.agent.trajectory import Step, Trajectory
from foveate.memory.blocks import image_block, text_block
from foveate.memory.video_memory import VideoMemory

BASELINE_INSTRUCTION = "Tools are not available for this question: answer from these frames, in the <answer> format."


def baseline_times(memory: VideoMemory, policy: str, question: str, n_frames: int) -> np.ndarray:
    duration = memory.duration_seconds
    if policy == "uniform":
        return (np.arange(n_frames) + 0.5) * duration / n_frames
    if policy == "retrieval":
        hits = memory.search(question, n_frames)
        return (
            np.asarray(sorted((h.start_seconds + h.end_seconds) / 2 for h in hits))
            if hits
            else (np.arange(n_frames) + 0.5) * duration / n_frames
        )
    raise ValueError(f"unknown baseline policy {policy!r}; valid: uniform, retrieval")


def baseline_calls(memory: VideoMemory, policy: str, question: str, n_frames: int) -> list[str]:
    """The tool calls that fetch the frames of :func:`baseline_times`, each in the controller's format."""
    from foveate.tools.toolbox import MAX_ZOOM_FRAMES

    if policy == "uniform":
        duration, calls = memory.duration_seconds, []
        for first in range(0, n_frames, MAX_ZOOM_FRAMES):  # frames first..last-1 of n: (i + 0.5) * duration / n
            last = min(n_frames, first + MAX_ZOOM_FRAMES)
            start, end = first * duration / n_frames, last * duration / n_frames
            calls.append(format_tool_call("zoom", start=round(start, 4), end=round(end, 4), num_frames=last - first))
        return calls
    if policy == "retrieval":
        hits = sorted(memory.search(question, n_frames), key=lambda h: h.start_seconds)
        if not hits:
            return baseline_calls(memory, "uniform", question, n_frames)
        return [format_tool_call("zoom", start=h.start_seconds, end=h.end_seconds, num_frames=1) for h in hits]
    raise ValueError(f"unknown baseline policy {policy!r}; valid: uniform, retrieval")


class _Prelude(Controller):
    """Writes ``outputs`` first (a baseline's calls), then lets ``controller`` continue the episode."""

    BACKEND_NAME = "prelude"

    def __init__(self, outputs: list[str], controller: Controller) -> None:
        self.outputs, self.controller = list(outputs), controller

    def _scripted(self) -> Generation:
        text = self.outputs.pop(0)
        return Generation(text=text, tool_calls=parse_tool_calls(text))

    def generate(self, messages: list[dict], tools: list[dict] | None) -> Generation:
        return self._scripted() if self.outputs else self.controller.generate(messages, tools)

    async def agenerate(self, messages: list[dict], tools: list[dict] | None) -> Generation:
        return self._scripted() if self.outputs else await self.controller.agenerate(messages, tools)


def _episode_config(config: AgentConfig, calls: list[str], n_frames: int) -> AgentConfig:
    # the calls, a free turn, and the forced one: the controller answers in a turn like the agent's
    return config.model_copy(update={"max_steps": len(calls) + 2, "max_frames": n_frames + 1})


def _baseline_messages(
    memory: VideoMemory, question: str, options: list[str] | None, times: list[float]
) -> list[dict]:
    frames = memory.frames_at(times, max_side=448)
    content = [text_block(question_text(question, options, memory.duration_seconds)), text_block(BASELINE_INSTRUCTION)]
    for t, f in zip(times, frames):
        content += [text_block(f"t={t:.1f}s"), image_block(f)]
    return [{"role": "system", "content": [text_block(SYSTEM_PROMPT)]}, {"role": "user", "content": content}]


def _baseline_trajectory(
    memory: VideoMemory, question: str, options: list[str] | None, qid: str, times: list[float], gen, start: float
) -> Trajectory:
    answer = parse_answer(gen.text, options, memory.duration_seconds) or _fallback_answer(gen.text, options)
    step = Step(
        text=gen.text,
        tokens_in=gen.tokens_in,
        tokens_out=gen.tokens_out,
        seconds=time.perf_counter() - start,
        forced_final=True,
    )
    return Trajectory(
        id=qid,
        video=memory.info.path,
        question=question,
        options=options,
        duration_s=memory.duration_seconds,
        steps=[step],
        answer=answer,
        frames_used=len(times),
        tool_calls=0,
        latency_s=time.perf_counter() - start,
    )


def _check_format(baseline_format: str) -> None:
    if baseline_format not in BASELINE_FORMATS:
        raise ValueError(f"unknown baseline format {baseline_format!r}; valid: {', '.join(BASELINE_FORMATS)}")


def run_baseline(
    memory: VideoMemory,
    question: str,
    options: list[str] | None,
    controller: Controller,
    policy: str,
    n_frames: int,
    qid: str = "",
    baseline_format: str = "prompt",
    config: AgentConfig = AgentConfig(),
) -> Trajectory:
    """Answer from ``n_frames`` frames chosen by ``policy`` (uniform or retrieval): in one controller turn
    (``prompt``), or in an agent episode opened by the calls that fetch them (``episode``, with ``config``'s
    overview settings)."""
    _check_format(baseline_format)
    if baseline_format == "episode":
        calls = baseline_calls(memory, policy, question, n_frames)
        return answer_question(
            memory, question, options, _Prelude(calls, controller), _episode_config(config, calls, n_frames), qid
        )
    start = time.perf_counter()
    times = baseline_times(memory, policy, question, n_frames)
    gen = controller.generate(_baseline_messages(memory, question, options, times), None)
    return _baseline_trajectory(memory, question, options, qid, times, gen, start)


async def run_baseline_async(
    memory: VideoMemory,
    question: str,
    options: list[str] | None,
    controller: Controller,
    policy: str,
    n_frames: int,
    qid: str = "",
    baseline_format: str = "prompt",
    config: AgentConfig = AgentConfig(),
) -> Trajectory:
    """:func:`run_baseline` as a coroutine: frames chosen and decoded in a worker thread, the controller awaited."""
    _check_format(baseline_format)
    if baseline_format == "episode":
        calls = await asyncio.to_thread(baseline_calls, memory, policy, question, n_frames)
        prelude = _Prelude(calls, controller)
        return await answer_question_async(
            memory, question, options, prelude, _episode_config(config, calls, n_frames), qid
        )
    start = time.perf_counter()
    times = await asyncio.to_thread(baseline_times, memory, policy, question, n_frames)
    messages = await asyncio.to_thread(_baseline_messages, memory, question, options, times)
    gen = await controller.agenerate(messages, None)
    return _baseline_trajectory(memory, question, options, qid, times, gen, start)
