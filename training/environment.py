"""The GRPO environment: the agent's VideoToolbox, reset per question, for TRL's ``environment_factory``.

TRL exposes every public method of the environment class as a tool, with the schema read from
its signature and docstring. Subclassing :class:`foveate.tools.toolbox.VideoToolbox` makes those the very
``retrieve``/``zoom``/``dense_sample`` methods the agent loop dispatches to (same schemas, same
validation, same error texts, same frame budget, same clip handles); this class only adds ``reset``.
A rollout's handles (``handles``, c1, c2, ... from its retrieve calls) stay on the environment until
the next ``reset``, so the rewards resolve the handles its answer cites as the agent loop does.

The episode's first turn is split between the dataset row and ``reset``: the row's ``prompt`` holds
the system turn and the question text, and ``reset`` returns the rest of the agent's first user
turn (the overview blocks, keyframe images included), which TRL appends to the user turn. Both
halves come from ``foveate.agent.prompts``, so the rendered prompt equals ``initial_messages``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from foveate.agent.config import AgentConfig
from foveate.agent.prompts import first_user_content, initial_messages
from foveate.memory.blocks import ContentBlock, count_images
from foveate.tools.toolbox import VideoToolbox

logger = logging.getLogger(__name__)


def dataset_prompt(question: str, options: list[str] | None, memory, agent: AgentConfig) -> list[dict]:
    """The row's ``prompt``: the agent's initial messages with the user turn cut after the question text."""
    system, user = initial_messages(question, options, memory, agent.overview_images, agent.overview_chars)
    return [system, {"role": "user", "content": user["content"][:1]}]


class VideoEnvironment(VideoToolbox):
    """One rollout: a question about one video, the toolbox over its memory and a fresh frame budget."""

    def __init__(self, memories: Callable[[str], object], agent: AgentConfig) -> None:
        super().__init__(None, max_frames=agent.max_frames)  # no video until reset()
        self._memories, self._agent = memories, agent
        self._row: dict = {}
        self._overview_images = 0

    def reset(self, **row) -> list[ContentBlock]:
        """Load the row's video memory (cached), restart the budget; returns the overview blocks of the first turn."""
        memory = self._memories(row["video"])
        self._load(memory, row.get("options"), row["question"])
        self._row = row
        blocks = first_user_content(
            row["question"], row.get("options"), memory, self._agent.overview_images, self._agent.overview_chars
        )[1:]
        self._overview_images = count_images(blocks)
        return blocks
