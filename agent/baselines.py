"""Tool-free baselines at a fixed frame budget, with the same backend and answer format.

``uniform``: N evenly spaced frames. ``retrieval``: the frames of the top-N clips retrieved
for the question text.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from foveate.agent.answer import parse_answer
from foveate.agent.backends.base import Controller
from foveate.agent.graph import _fallback_answer
from foveate.agent.prompts import SYSTEM_PROMPT, question_text
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
    answer = parse_answer(gen.text, len(options or []), memory.duration_seconds) or _fallback_answer(
        gen.text, len(options or [])
    )
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


def run_baseline(
    memory: VideoMemory,
    question: str,
    options: list[str] | None,
    controller: Controller,
    policy: str,
    n_frames: int,
    qid: str = "",
) -> Trajectory:
    """Answer from ``n_frames`` frames chosen by ``policy`` (uniform or retrieval), in one controller turn."""
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
) -> Trajectory:
    """:func:`run_baseline` as a coroutine: frames chosen and decoded in a worker thread, the controller awaited."""
    start = time.perf_counter()
    times = await asyncio.to_thread(baseline_times, memory, policy, question, n_frames)
    messages = await asyncio.to_thread(_baseline_messages, memory, question, options, times)
    gen = await controller.agenerate(messages, None)
    return _baseline_trajectory(memory, question, options, qid, times, gen, start)
