"""GRPO rewards, one function per component so TRL weights and logs each on its own.

Each follows TRL's reward-function signature: ``f(prompts, completions, **columns, environments,
log_metric, ...) -> list[float]``; ``completions[i]`` is the rollout's messages (assistant turns,
tool results, ...) and ``environments[i]`` its :class:`training.environment.VideoEnvironment`.
TRL logs ``rewards/<name>/mean`` per component and the weighted sum as ``reward``.

The tool-call monitor also lives here: TRL parses tool calls with the tokenizer's response
template and, when a ``<tool_call>`` block is malformed, keeps the turn as plain text; counting
those turns gives the parse-failure rate. The monitor logs ``tools/rollouts_with_call`` (the
tool-call rate), ``tools/calls_per_rollout`` and ``tools/parse_failure_rate`` every generation
round, and raises :class:`ToolCallCollapse` when no call has parsed for N rounds in a row.
It also logs ``tools/unfinished_rollouts``, the share of rollouts whose last turn is still a tool
call: TRL counts tool results in ``max_completion_length`` and ends a rollout, unanswered, when
the next result would not fit; it warns when every rollout of N rounds in a row ended that way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from foveate.agent.answer import Answer, matches_gold, parse_answer
from foveate.agent.toolcalls import TOOL_CALL_RE
from foveate.memory.errors import FoveateError
from foveate.training.config import RewardWeights

logger = logging.getLogger(__name__)


class ToolCallCollapse(FoveateError):
    """The policy stopped producing parseable tool calls."""


def _text(message: dict) -> str:
    content = message.get("content") or ""
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")


def final_answer(
    completion: list[dict],
    options: Sequence[str] | None,
    duration_seconds: float | None,
    handles: Mapping | None = None,
) -> Answer | None:
    """The answer in the rollout's last assistant turn, parsed exactly as the agent parses it
    (``handles``: the rollout's clip handles, the environment's ``handles``)."""
    turns = [m for m in completion if m.get("role") == "assistant"]
    return parse_answer(_text(turns[-1]), options, duration_seconds, handles) if turns else None


def call_counts(completion: list[dict]) -> tuple[int, int]:
    """(tool calls TRL parsed, ``<tool_call>`` blocks it could not parse) in one rollout."""
    parsed = malformed = 0
    for m in completion:
        if m.get("role") != "assistant":
            continue
        parsed += len(m.get("tool_calls") or [])
        malformed += len(TOOL_CALL_RE.findall(_text(m)))  # parsed calls leave the content; what is left failed
    return parsed, malformed


def unfinished(completion: list[dict]) -> bool:
    """The rollout ended on a tool call: no final turn was generated after the last tool result."""
    turns = [m for m in completion if m.get("role") in ("assistant", "tool")]
    return bool(turns) and (turns[-1]["role"] == "tool" or bool(turns[-1].get("tool_calls")))


def correct(completions, environments, answer, options, **_) -> list[float]:
    """1 when the final answer picks the right option (or matches the open answer), else 0."""
    return [
        float(matches_gold(final_answer(c, o, env.duration_seconds, env.handles), gold, o))
        for c, env, gold, o in zip(completions, environments, answer, options)
    ]


def format_valid(completions, environments, options, **_) -> list[float]:
    """1 for a parseable final answer with every tool call well formed, 0.5 with malformed calls,
    0 without an answer."""
    out = []
    for c, env, o in zip(completions, environments, options):
        if final_answer(c, o, env.duration_seconds, env.handles) is None:
            out.append(0.0)
        else:
            out.append(0.5 if call_counts(c)[1] else 1.0)
    return out


def evidence_iou(completions, environments, options, evidence, **_) -> list[float]:
    """Temporal IoU between the cited evidence spans and the true ones (0 without an answer)."""
    from foveate.evals.metrics import temporal_iou

    out = []
    for c, env, o, gold in zip(completions, environments, options, evidence):
        ans = final_answer(c, o, env.duration_seconds, env.handles)
        out.append(temporal_iou(list(ans.evidence), [tuple(s) for s in gold or []]) if ans else 0.0)
    return out


def frame_penalty(completions, environments, **_) -> list[float]:
    """Minus the fraction of the tool frame budget spent (0 when nothing was spent, -1 when all of it)."""
    return [-env.frames_used / max(1, env.max_frames) for env in environments]


class ToolCallMonitor:
    """Per generation round: tool-call rate and parse failures; fails after ``patience`` rounds
    without a parsed call."""

    def __init__(self, patience: int) -> None:
        self.patience, self.rounds_without_calls, self.rounds_unfinished, self.history = patience, 0, 0, []

    def observe(self, completions: list[list[dict]], log_metric: Callable[[str, float], None] | None = None) -> dict:
        counts = [call_counts(c) for c in completions]
        parsed = sum(p for p, _ in counts)
        malformed = sum(m for _, m in counts)
        stats = {
            "tools/rollouts_with_call": sum(p > 0 for p, _ in counts) / max(1, len(counts)),
            "tools/calls_per_rollout": parsed / max(1, len(counts)),
            "tools/parse_failure_rate": malformed / max(1, parsed + malformed),
            "tools/unfinished_rollouts": sum(map(unfinished, completions)) / max(1, len(completions)),
        }
        self.history.append(stats)
        if log_metric is not None:
            for name, value in stats.items():
                log_metric(name, value)
        self.rounds_without_calls = 0 if parsed else self.rounds_without_calls + 1
        self.rounds_unfinished = (
            self.rounds_unfinished + 1 if completions and stats["tools/unfinished_rollouts"] == 1 else 0
        )
        if self.rounds_unfinished == self.patience:
            logger.warning(
                "every rollout of the last %d generation rounds ended on a tool call, without an answer: "
                "TRL counts tool results in max_completion_length, so raise it (or lower the agent's "
                "frame budget) until the answer turn fits",
                self.patience,
            )
        if self.rounds_without_calls >= self.patience:
            raise ToolCallCollapse(
                f"no tool call has parsed in {self.rounds_without_calls} consecutive generation rounds "
                f"({malformed} malformed <tool_call> blocks in the last one); the policy no longer calls tools: "
                "start from an SFT checkpoint (warm_start_sft), lower the learning rate, or raise "
                "stop_after_steps_without_tool_calls"
            )
        return stats


REWARDS: dict[str, Callable] = {
    "correct": correct,
    "format": format_valid,
    "evidence_iou": evidence_iou,
    "frame_penalty": frame_penalty,
}


def reward_functions(weights: RewardWeights, monitor: ToolCallMonitor) -> tuple[list[Callable], list[float]]:
    """The reward functions (named as in the config) and their weights; the format reward also feeds the monitor."""
    funcs, values = [], []
    for name, func in REWARDS.items():
        if name == "format":

            def func(completions, log_metric=None, _inner=func, **kw):
                monitor.observe(completions, log_metric)
                return _inner(completions=completions, **kw)

            func.__name__ = name
        funcs.append(func)
        values.append(getattr(weights, name))
    return funcs, values
