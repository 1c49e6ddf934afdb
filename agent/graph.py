"""The controller loop as a LangGraph ``StateGraph``: controller -> tools -> controller ... -> answer.

Budgets are enforced here: after ``max_steps`` controller turns, or when the frame budget is
spent, the controller is asked once more, without tools, for its final answer. Whatever the
model writes, the loop ends with an Answer (``valid=False`` when none could be parsed).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import TypedDict

from langgraph.graph import END, START, StateGraph

from foveate.agent.answer import LETTERS, Answer, parse_answer
from foveate.agent.backends.base import Controller, ControllerError
from foveate.agent.config import AgentConfig
from foveate.agent.prompts import BUDGET_EXHAUSTED, initial_messages
from foveate.agent.trajectory import Step, ToolTurn, Trajectory
from foveate.memory.blocks import blocks_text, count_images, text_block
from foveate.memory.video_memory import VideoMemory
from foveate.tools.toolbox import VideoToolbox, dispatch, tool_schemas

logger = logging.getLogger(__name__)

NUDGE = (
    "Your last message had neither a tool call nor an answer. Call one tool with "
    "<tool_call>{...}</tool_call>, or answer with <answer>{...}</answer>."
)


class LoopState(TypedDict):
    messages: list[dict]
    steps: list[Step]
    answer: Answer | None
    pending: list  # ParsedCall list from the last controller turn
    forced: bool


def _fallback_answer(text: str, options: Sequence[str] | None) -> Answer:
    """An invalid Answer that still carries a choice if the text names exactly one option letter."""
    letters = set(re.findall(r"\b([A-J])\b", text or "")) & set(LETTERS[: len(options or [])])
    return Answer(
        text=(text or "")[:200], choice=letters.pop() if len(letters) == 1 else None, evidence=[], valid=False
    )


def build_graph(
    controller: Controller,
    toolbox: VideoToolbox,
    config: AgentConfig,
    options: Sequence[str] | None,
    duration: float,
    on_step: Callable[[Step], None] | None = None,
    asynchronous: bool = False,
):
    """The compiled loop. With ``asynchronous`` its nodes are coroutines (run it with ``astream``): the
    controller is awaited (``Controller.agenerate``) and the tools run in a worker thread, so one event
    loop keeps many episodes in flight."""
    schemas = tool_schemas()

    def prompt(state: LoopState) -> tuple[list[dict], bool]:
        """The messages to send this turn, and whether this is the forced final turn (no tools)."""
        forced = len(state["steps"]) >= config.max_steps - 1 or (
            config.max_frames > 0 and toolbox.frames_left <= 0 and state["steps"]
        )
        messages = state["messages"]
        if forced:
            messages = messages + [{"role": "user", "content": [text_block(BUDGET_EXHAUSTED)]}]
        return messages, bool(forced)

    def reply(state: LoopState, messages: list[dict], forced: bool, gen, seconds: float) -> dict:
        step = Step(
            text=gen.text,
            tokens_in=gen.tokens_in,
            tokens_out=gen.tokens_out,
            seconds=seconds,
            forced_final=forced,
        )
        answer = parse_answer(gen.text, options, duration, toolbox.handles)
        new_messages = messages + [{"role": "assistant", "content": [text_block(gen.text)]}]
        if answer is None and forced:
            answer = _fallback_answer(gen.text, options)
        if on_step and (answer is not None or not gen.tool_calls):
            on_step(step)
        return {
            "messages": new_messages,
            "steps": state["steps"] + [step],
            "answer": answer,
            "pending": [] if (answer is not None or forced) else gen.tool_calls,
            "forced": forced,
        }

    def controller_node(state: LoopState) -> dict:
        messages, forced = prompt(state)
        start = time.perf_counter()
        gen = controller.generate(messages, None if forced else schemas)
        return reply(state, messages, forced, gen, time.perf_counter() - start)

    async def controller_node_async(state: LoopState) -> dict:
        messages, forced = prompt(state)
        start = time.perf_counter()
        gen = await controller.agenerate(messages, None if forced else schemas)
        return reply(state, messages, forced, gen, time.perf_counter() - start)

    def tools_node(state: LoopState) -> dict:
        messages = list(state["messages"])
        step = state["steps"][-1]
        if not state["pending"]:
            messages.append({"role": "user", "content": [text_block(NUDGE)]})
            return {"messages": messages, "pending": []}
        for call in state["pending"]:
            result = dispatch(toolbox, call.name, call.arguments, parse_error=call.error)
            step.tool_turns.append(
                ToolTurn(
                    name=call.name,
                    arguments=call.arguments if isinstance(call.arguments, dict) else None,
                    frames_spent=result.frames_spent,
                    error=result.error,
                    window=result.window,
                    summary=blocks_text(result.blocks),
                    images=count_images(result.blocks),
                )
            )
            messages.append({"role": "tool", "name": call.name or "tool_call", "content": result.blocks})
        if on_step:
            on_step(step)
        return {"messages": messages, "pending": []}

    async def tools_node_async(state: LoopState) -> dict:
        return await asyncio.to_thread(tools_node, state)  # decoding and retrieval hold no event loop

    def route(state: LoopState) -> str:
        return END if state["answer"] is not None else "tools"

    graph = StateGraph(LoopState)
    graph.add_node("controller", controller_node_async if asynchronous else controller_node)
    graph.add_node("tools", tools_node_async if asynchronous else tools_node)
    graph.add_edge(START, "controller")
    graph.add_conditional_edges("controller", route, {"tools": "tools", END: END})
    graph.add_edge("tools", "controller")
    return graph.compile()


class _Episode:
    """One question's loop: its toolbox, first messages, compiled graph, and the latest state."""

    def __init__(
        self,
        memory: VideoMemory,
        question: str,
        options: list[str] | None,
        controller: Controller,
        config: AgentConfig,
        qid: str,
        on_step: Callable[[Step], None] | None,
        asynchronous: bool,
    ) -> None:
        self.start = time.perf_counter()
        self.memory, self.question, self.options, self.qid = memory, question, options, qid
        self.toolbox = VideoToolbox(memory, max_frames=config.max_frames, options=options, question=question)
        messages = initial_messages(question, options, memory, config.overview_images, config.overview_chars)
        self.overview_frames = count_images(messages[1]["content"])
        self.app = build_graph(
            controller, self.toolbox, config, options, memory.duration_seconds, on_step, asynchronous
        )
        self.initial: LoopState = {"messages": messages, "steps": [], "answer": None, "pending": [], "forced": False}
        self.state = self.initial
        self.run_config = {"recursion_limit": 4 * config.max_steps + 8}

    def trajectory(self) -> Trajectory:
        steps = self.state["steps"]
        return Trajectory(
            id=self.qid,
            video=self.memory.info.path,
            question=self.question,
            options=self.options,
            duration_s=self.memory.duration_seconds,
            steps=steps,
            answer=self.state["answer"],
            frames_used=self.overview_frames + self.toolbox.frames_used,
            tool_calls=sum(len(s.tool_turns) for s in steps),
            latency_s=time.perf_counter() - self.start,
        )


def answer_question(
    memory: VideoMemory,
    question: str,
    options: list[str] | None,
    controller: Controller,
    config: AgentConfig = AgentConfig(),
    qid: str = "",
    on_step: Callable[[Step], None] | None = None,
) -> Trajectory:
    """Run one episode and return its Trajectory (with ``answer`` set).

    A ControllerError (a server down, a malformed reply) or a KeyboardInterrupt ends the episode early
    and propagates with the steps done so far attached as ``exc.trajectory`` (``answer`` None).
    """
    episode = _Episode(memory, question, options, controller, config, qid, on_step, asynchronous=False)
    try:  # stream the states, not invoke, so the last one is at hand when a step fails
        for latest in episode.app.stream(episode.initial, episode.run_config, stream_mode="values"):
            episode.state = latest
    except (ControllerError, KeyboardInterrupt) as exc:
        exc.trajectory = episode.trajectory()
        raise
    return episode.trajectory()


async def answer_question_async(
    memory: VideoMemory,
    question: str,
    options: list[str] | None,
    controller: Controller,
    config: AgentConfig = AgentConfig(),
    qid: str = "",
    on_step: Callable[[Step], None] | None = None,
) -> Trajectory:
    """:func:`answer_question` as a coroutine: many of them share one event loop (``foveate batch --concurrency``)."""
    episode = _Episode(memory, question, options, controller, config, qid, on_step, asynchronous=True)
    try:
        async for latest in episode.app.astream(episode.initial, episode.run_config, stream_mode="values"):
            episode.state = latest
    except (ControllerError, asyncio.CancelledError) as exc:
        exc.trajectory = episode.trajectory()
        raise
    return episode.trajectory()
