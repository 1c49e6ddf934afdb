"""The uniform and retrieval baselines: the same frames whether shown in one prompt or fetched by tool calls
in the agent's episode, and the controller answers after them."""

import numpy as np
import pytest

from foveate.agent.backends.scripted import ScriptedController
from foveate.agent.baselines import baseline_calls, baseline_times, run_baseline
from foveate.agent.config import AgentConfig
from foveate.agent.toolcalls import parse_tool_calls
from foveate.memory.config import IngestConfig
from foveate.training.assets import world_rows

AGENT = AgentConfig(max_steps=4, max_frames=16, overview_images=1, overview_chars=400)
ANSWER = '<answer>{"answer": "x", "choice": "B", "evidence": [[1.0, 2.0]]}</answer>'


@pytest.fixture(scope="module")
def memory(small_world, tiny_embedder_spec, tmp_path_factory):
    from foveate.memory.video_memory import ingest

    return ingest(
        world_rows(small_world)[0].video,
        cache_root=tmp_path_factory.mktemp("cache"),
        embedder=tiny_embedder_spec,
        config=IngestConfig(thumbnail_max_side=64, embed_max_side=64),
    )


def _looked_times(traj) -> list[float]:
    """The frame times of every zoom the episode ran, read off the tool results' ``t=`` lines."""
    times = []
    for step in traj.steps:
        for turn in step.tool_turns:
            assert turn.name == "zoom" and turn.error is None
            start, end = turn.window
            n = turn.arguments["num_frames"]
            times += list(start + (np.arange(n) + 0.5) * (end - start) / n)
    return times


@pytest.mark.parametrize("policy", ["uniform", "retrieval"])
def test_episode_baselines_fetch_the_prompt_baselines_frames_then_the_controller_answers(memory, policy):
    question = "What colour was the star?"
    options = ["red", "blue", "green", "white", "cyan"]
    n = 11  # uniform: two zoom calls (8 + 3 frames)
    ctl = ScriptedController([ANSWER])
    traj = run_baseline(memory, question, options, ctl, policy, n, qid="q", baseline_format="episode", config=AGENT)

    calls = baseline_calls(memory, policy, question, n)
    assert [s.text for s in traj.steps[:-1]] == calls
    assert len(calls) == (2 if policy == "uniform" else n)
    np.testing.assert_allclose(sorted(_looked_times(traj)), baseline_times(memory, policy, question, n), atol=1e-3)
    # the controller wrote one turn, the answer, in a turn with tools (not a forced one)
    assert len(ctl.calls) == 1 and not traj.steps[-1].forced_final
    assert ctl.calls[0][0]["role"] == "system" and ctl.calls[0][-1]["role"] == "tool"
    assert traj.answer.choice == "B"
    assert traj.frames_used == n + 1  # and the overview's one image
    assert all(parse_tool_calls(c)[0].name == "zoom" for c in calls)


def test_prompt_baseline_is_one_turn(memory):
    ctl = ScriptedController([ANSWER])
    traj = run_baseline(memory, "What moved?", ["a", "b"], ctl, "uniform", 4)
    assert len(ctl.calls) == 1 and len(traj.steps) == 1 and traj.tool_calls == 0 and traj.frames_used == 4
    with pytest.raises(ValueError, match="baseline format"):
        run_baseline(memory, "What moved?", ["a", "b"], ctl, "uniform", 4, baseline_format="chat")
