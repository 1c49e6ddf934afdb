"""SFT episodes: controller outputs replayed through the agent's own loop, then stored on disk.

An episode's messages are never assembled here: :func:`run_scripted` feeds the outputs to the
agent loop (``agent.graph.answer_question``) through the scripted backend, so the prompt, the
overview, the tool results (executed on the real toolbox over the real VideoMemory) and every
nudge are exactly what the agent produces. Two sources feed it: the oracle (training/oracle.py)
and recorded trajectories from any backend (``foveate batch --trace``), kept only when correct
(rejection sampling) and when their replay reproduces the recorded tool results.

On disk an example is one JSONL row ``{"id", "source", "messages", "images"}``: ``messages`` is
the conversation as JSON with ``{"type": "image"}`` placeholders, ``images`` the PNG files that
fill them in order (lossless, so the pixels are the ones the agent saw).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from foveate.agent.answer import matches_gold
from foveate.agent.backends.scripted import ScriptedController
from foveate.agent.config import AgentConfig
from foveate.agent.graph import answer_question
from foveate.agent.records import ManifestRow
from foveate.agent.trajectory import Trajectory, read_trajectories
from foveate.memory.blocks import text_block
from foveate.training.oracle import OracleConfig, OraclePolicy

logger = logging.getLogger(__name__)


@dataclass
class Episode:
    id: str
    source: str
    messages: list[dict]  # agent messages; image blocks hold PIL images
    trajectory: Trajectory


def run_scripted(
    memory,
    question: str,
    options: list[str] | None,
    outputs: list[str],
    agent: AgentConfig,
    qid: str = "",
    source: str = "oracle",
) -> tuple[Episode | None, str]:
    """Replay ``outputs`` in the agent loop; returns (episode, "") or (None, why it was rejected)."""
    ctl = ScriptedController(outputs)
    traj = answer_question(memory, question, options, ctl, agent, qid=qid)
    if ctl.outputs:
        return None, f"the loop ended after {len(traj.steps)} of {len(outputs)} outputs"
    if traj.steps[-1].forced_final:  # the forced turn is rendered without tools: not the prompt of other turns
        return None, "the final answer was forced by a budget"
    if traj.answer is None or not traj.answer.valid:
        return None, "no valid final answer"
    messages = ctl.calls[-1] + [{"role": "assistant", "content": [text_block(traj.steps[-1].text)]}]
    return Episode(qid, source, messages, traj), ""


def oracle_episodes(
    rows: Iterable[ManifestRow],
    memories: Callable,
    logs: Callable,
    agent: AgentConfig,
    oracle: OracleConfig,
    paths_per_question: int,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[Episode]:
    """``paths_per_question`` oracle episodes per row (different seeded paths); ``progress(rows done, rows)``
    after each row. Paths that find no retrieved clip showing the event are counted and logged once, at the end."""
    policy = OraclePolicy(oracle, agent)
    rows = list(rows)
    unseen: list[str] = []  # row ids, once per path that found no clip showing the event
    for n, row in enumerate(rows):
        memory = memories(row.video)
        for k in range(paths_per_question):
            rng = np.random.default_rng([seed, n, k])
            outputs = policy.outputs(row, logs(row.video), memory.duration_seconds, rng, search=memory.search)
            if outputs is None:
                logger.debug("%s: no oracle episode: no retrieved clip shows the event", row.id)
                unseen.append(row.id)
                continue
            episode, why = run_scripted(memory, row.question, row.options, outputs, agent, qid=f"{row.id}-oracle{k}")
            if episode is None:
                logger.warning("%s: oracle episode dropped: %s", row.id, why)
                continue
            yield episode
        if progress is not None:
            progress(n + 1, len(rows))
    if unseen:
        logger.info(
            "oracle: %d of %d paths (%d of %d questions) found no retrieved clip that shows the event and were "
            "left out (the ids: --verbose)",
            len(unseen),
            len(rows) * paths_per_question,
            len(set(unseen)),
            len(rows),
        )


def is_correct(traj: Trajectory) -> bool:
    """The trajectory's answer matches its gold answer (option letter, else normalised text)."""
    return matches_gold(traj.answer, traj.gold, traj.options)


def recorded_episodes(path: Path, memories: Callable, agent: AgentConfig) -> Iterator[Episode]:
    """Correct trajectories of ``path`` whose replay reproduces the recorded tool results."""
    kept = seen = 0
    for traj in read_trajectories(path):
        seen += 1
        if not is_correct(traj) or any(s.forced_final for s in traj.steps):
            continue
        episode, why = run_scripted(
            memories(traj.video),
            traj.question,
            traj.options,
            [s.text for s in traj.steps],
            agent,
            qid=traj.id or f"{path.stem}-{seen}",
            source="recorded",
        )
        recorded = [(t.name, t.frames_spent, t.error) for s in traj.steps for t in s.tool_turns]
        replayed = (
            [(t.name, t.frames_spent, t.error) for s in episode.trajectory.steps for t in s.tool_turns]
            if episode
            else None
        )
        if episode is None or recorded != replayed:
            logger.warning(
                "%s: recorded trajectory %s dropped: %s",
                path,
                traj.id,
                why or "its replay differs (other budgets or cache?)",
            )
            continue
        kept += 1
        yield episode
    logger.info("%s: kept %d of %d recorded trajectories", path, kept, seen)


def save_examples(episodes: Iterable[Episode], out_dir: Path) -> list[dict]:
    """Write ``out_dir/examples.jsonl`` and ``out_dir/images/*.png``; returns the rows."""
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, ep in enumerate(episodes):
        paths: list[str] = []
        messages = []
        for m in ep.messages:
            content = []
            for block in m["content"]:
                if block["type"] == "image":
                    path = images_dir / f"{i:06d}-{len(paths):03d}.png"
                    block["image"].convert("RGB").save(path)
                    paths.append(str(path))
                    content.append({"type": "image"})
                else:
                    content.append({"type": "text", "text": block["text"]})
            messages.append({k: v for k, v in m.items() if k != "content"} | {"content": content})
        rows.append({"id": ep.id, "source": ep.source, "messages": json.dumps(messages), "images": paths})
    tmp = out_dir / "examples.jsonl.tmp"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(out_dir / "examples.jsonl")
    return rows


def load_examples(out_dir: Path) -> list[dict]:
    """The rows :func:`save_examples` wrote into ``out_dir``."""
    with (out_dir / "examples.jsonl").open() as f:
        return [json.loads(line) for line in f if line.strip()]


def load_messages(row: dict) -> list[dict]:
    """A stored example's messages with its PNG images filled into the placeholders, in order."""
    from PIL import Image

    images = iter(row["images"])
    messages = json.loads(row["messages"])
    for m in messages:
        for block in m["content"]:
            if block["type"] == "image":
                with Image.open(next(images)) as im:
                    block["image"] = im.convert("RGB")
    return messages
