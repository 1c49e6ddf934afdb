"""Clip handles: retrieve names its clips c1, c2, ... across the episode; zoom, dense_sample, the final
answer and the GRPO evidence reward accept them in place of seconds. Real toolbox over a real VideoMemory."""

import json
import re

import numpy as np
import pytest

from foveate.agent.answer import parse_answer
from foveate.agent.backends.scripted import ScriptedController
from foveate.agent.config import AgentConfig
from foveate.agent.graph import answer_question
from foveate.memory import IngestConfig, ingest
from foveate.memory.blocks import blocks_text
from foveate.tools import VideoToolbox

LINE = re.compile(r"^(c\d+) \[[\d:]+-[\d:]+\) ([\d.]+)-([\d.]+)s score")


@pytest.fixture(scope="module")
def memory(cuts_video, tiny_embedder_spec, tmp_path_factory):
    return ingest(
        cuts_video.path,
        cache_root=tmp_path_factory.mktemp("c"),
        embedder=tiny_embedder_spec,
        config=IngestConfig(clip_seconds=2.0),
    )


def _listed(blocks) -> list[tuple[str, float, float]]:
    """(handle, start, end) of each result line of a retrieve result."""
    return [(m[1], float(m[2]), float(m[3])) for m in map(LINE.match, blocks_text(blocks).splitlines()) if m]


def _expected_handles(memory, calls) -> dict[str, tuple[float, float]]:
    """Handles numbered by first appearance across ``calls`` [(query, k)], from the memory's own search."""
    spans: list[tuple[float, float]] = []
    for query, k in calls:
        for hit in memory.search(query, k):
            if (hit.start_seconds, hit.end_seconds) not in spans:
                spans.append((hit.start_seconds, hit.end_seconds))
    return {f"c{i}": span for i, span in enumerate(spans, 1)}


def test_retrieve_numbers_clips_across_calls_and_keeps_handles(memory):
    toolbox = VideoToolbox(memory, max_frames=64)
    calls = [("a white square", 3), ("a textured scene", 5), ("a white square", 2)]
    results = [toolbox.retrieve(q, k) for q, k in calls]
    expected = _expected_handles(memory, calls)
    assert toolbox.handles == expected
    assert len(expected) > 3  # the second call named new clips c4, ...
    for (query, k), blocks in zip(calls, results):
        listed = _listed(blocks)
        hits = memory.search(query, k)
        assert [h for h, _, _ in listed] == [
            next(n for n, span in expected.items() if span == (hit.start_seconds, hit.end_seconds)) for hit in hits
        ]
        assert [(s, e) for _, s, e in listed] == [(round(h.start_seconds, 1), round(h.end_seconds, 1)) for h in hits]
        captions = [b["text"] for b in blocks if b["type"] == "text" and b["text"].startswith("clip ")]
        assert captions == [f"clip {h} ({s:.1f}-{e:.1f}s):" for h, s, e in listed]
    toolbox.handles["c1"] = (0.0, 1.0)  # a copy: the toolbox's map is read-only
    assert toolbox.handles == expected
    toolbox._load(memory)  # a new episode starts from c1 again
    assert toolbox.handles == {}
    assert _listed(toolbox.retrieve(*calls[1]))[0][0] == "c1"


@pytest.mark.parametrize("tool, extra", [("zoom", {"num_frames": 3}), ("dense_sample", {"fps": 2.0})])
def test_a_handle_shows_the_same_frames_as_the_clips_seconds(memory, tool, extra):
    by_handle, by_seconds = VideoToolbox(memory, max_frames=64), VideoToolbox(memory, max_frames=64)
    for toolbox in (by_handle, by_seconds):  # the same budget left
        toolbox.retrieve("a white square", 3)
    start, end = by_handle.handles["c2"]
    a = getattr(by_handle, tool)(clip="c2", **extra)
    b = getattr(by_seconds, tool)(start, end, **extra)
    assert [blk.get("text") for blk in a] == [blk.get("text") for blk in b]
    images = [(np.asarray(x["image"]), np.asarray(y["image"])) for x, y in zip(a, b) if x["type"] == "image"]
    assert images and all(np.array_equal(x, y) for x, y in images)
    assert by_handle.results[-1].window == by_seconds.results[-1].window == (start, end)
    assert by_handle.results[-1].arguments == {"clip": "c2", **extra}


@pytest.mark.parametrize(
    "arguments, error",
    [
        ({"clip": "c9"}, "unknown clip handle 'c9'; the known handles are c1, c2, c3"),
        ({"clip": "c1", "start": 0.0, "end": 2.0}, "either clip or start and end, not both"),
        ({"clip": "c1", "end": 2.0}, "not both"),
        ({}, "start and end missing"),
        ({"start": 2.0}, "end missing"),
        ({"clip": 2}, "clip must be a non-empty text"),
    ],
)
def test_bad_windows_become_error_results(memory, arguments, error):
    calls = [
        {"name": "retrieve", "arguments": {"query": "a white square", "k": 3}},
        {"name": "zoom", "arguments": arguments},
    ]
    outputs = [f"<tool_call>{json.dumps(c)}</tool_call>" for c in calls]
    ctl = ScriptedController(outputs + ['<answer>{"choice": "A", "answer": "x", "evidence": []}</answer>'])
    traj = answer_question(memory, "q?", ["a", "b"], ctl, AgentConfig(max_frames=40, overview_images=1))
    turn = traj.steps[1].tool_turns[0]
    assert turn.error and error in turn.error and turn.frames_spent == 0 and turn.window is None
    assert "c1, c2, c3" in turn.summary or "clip must be" in turn.summary  # the message says what to use
    assert traj.answer.valid


def test_a_handle_before_any_retrieve_says_to_retrieve_first(memory):
    toolbox = VideoToolbox(memory)
    text = blocks_text(toolbox.zoom(clip="c1"))
    assert "no clip has been retrieved yet" in text and toolbox.results[-1].error


def test_the_agent_resolves_handles_in_calls_and_in_the_evidence(memory):
    ctl = ScriptedController(
        [
            '<tool_call>{"name": "retrieve", "arguments": {"query": "a white square", "k": 3}}</tool_call>',
            '<tool_call>{"name": "zoom", "arguments": {"clip": "c3", "num_frames": 2}}</tool_call>',
            '<answer>{"choice": "B", "answer": "b", "evidence": ["c3", [1.0, 2.5], "c7", "C1"]}</answer>',
        ]
    )
    traj = answer_question(memory, "q?", ["a", "b"], ctl, AgentConfig(max_frames=40, overview_images=1))
    handles = _expected_handles(memory, [("a white square", 3)])
    zoom = traj.steps[1].tool_turns[0]
    assert zoom.error is None and zoom.window == handles["c3"] and zoom.frames_spent == 2
    assert traj.answer.valid and traj.answer.evidence == [handles["c3"], (1.0, 2.5), handles["c1"]]  # c7 dropped


def test_parse_answer_resolves_handles_and_drops_unknown_ones():
    handles = {"c1": (3.0, 6.0), "c2": (10.0, 14.0)}
    text = '<answer>{"choice": "A", "answer": "x", "evidence": ["c2", [30.0, 34.5], "c5", 7, " c1 "]}</answer>'
    assert parse_answer(text, None, 12.0, handles).evidence == [(10.0, 12.0), (3.0, 6.0)]  # clipped to the duration
    assert parse_answer(text, None, 60.0).evidence == [(30.0, 34.5)]  # no handles known: only the spans
    assert parse_answer('<answer>{"answer": "x", "evidence": "c1"}</answer>', None, 60.0, handles).evidence == [
        (3.0, 6.0)
    ]


def test_grpo_evidence_reward_resolves_the_rollouts_handles(memory):
    from foveate.training.environment import VideoEnvironment
    from foveate.training.rewards import correct, evidence_iou

    env = VideoEnvironment(lambda video: memory, AgentConfig(max_frames=40, overview_images=1))
    env.reset(video="cuts.mp4", question="q?", options=["a", "b"])
    env.retrieve(query="a white square", k=3)
    gold = [list(env.handles["c2"])]

    def completion(evidence):
        answer = json.dumps({"choice": "B", "answer": "b", "evidence": evidence})
        return [{"role": "assistant", "content": f"<answer>{answer}</answer>"}]

    completions = [completion(["c2"]), completion(gold), completion(["c9"])]
    kwargs = {"environments": [env] * 3, "options": [["a", "b"]] * 3, "evidence": [gold] * 3}
    assert evidence_iou(completions, **kwargs) == [1.0, 1.0, 0.0]
    assert correct(completions, answer=["B"] * 3, **kwargs) == [1.0] * 3
    env.reset(video="cuts.mp4", question="q?", options=["a", "b"])  # the next rollout has no handles yet
    assert env.handles == {} and evidence_iou(completions[:1], **{k: v[:1] for k, v in kwargs.items()}) == [0.0]


def test_a_query_may_name_an_option_by_letter(memory):
    """With the question's options, a query "B" searches for option B's text and its lines say so
    ("B. a white square: c1 ..."); a letter past the options is an error; without options "B" is only text."""
    options = ["a textured scene", "a white square"]
    toolbox = VideoToolbox(memory, max_frames=64, options=options)
    text = blocks_text(toolbox.retrieve(["B", "A"], 1))
    lines = [line for line in text.splitlines() if re.match(r"^.+: c\d+ \[", line)]
    assert sorted(line.split(": c")[0] for line in lines) == ["A. a textured scene", "B. a white square"]
    plain = blocks_text(VideoToolbox(memory, max_frames=64).retrieve(options[::-1], 1))
    assert [line.split(": ", 1)[1] for line in lines] == [
        line.split(": ", 1)[1] for line in plain.splitlines() if re.match(r"^.+: c\d+ \[", line)
    ]  # the same clips, spans and scores as the options' texts
    single = blocks_text(VideoToolbox(memory, max_frames=64, options=options).retrieve("b", 2))
    assert single.startswith("retrieve('a white square')")
    wrong = VideoToolbox(memory, max_frames=64, options=options)
    assert "not one of the question's options (A-B)" in blocks_text(wrong.retrieve(["A", "C"], 1))
    assert wrong.frames_used == 0
    literal = blocks_text(VideoToolbox(memory, max_frames=64).retrieve(["B"], 1))
    assert re.search(r"^B: c1 \[", literal, re.M)
    from foveate.agent.answer import LETTERS
    from foveate.tools.toolbox import OPTION_LETTERS

    assert OPTION_LETTERS == LETTERS  # the letters the prompt gives the options


def test_a_list_of_queries_lists_the_best_clips_of_each_in_time_order(memory):
    """retrieve(["a", "b", ...], k): the top k clips of each query, one line each naming its query, ordered by
    start time; handles numbered in that order; one thumbnail per clip however many queries found it."""
    toolbox = VideoToolbox(memory, max_frames=64)
    queries = ["a white square", "a textured scene", "a white square on black"]
    blocks = toolbox.retrieve(queries, 2)
    text = blocks_text(blocks)
    lines = [line for line in text.splitlines() if re.match(r"^.+: c\d+ \[", line)]
    found = [(q, hit) for q in queries for hit in memory.search(q, 2)]
    assert len(lines) == len(found) == 6
    listed = [(line.split(": c")[0], LINE.match(line[line.index(": c") + 2 :])) for line in lines]
    starts = [float(m[2]) for _, m in listed]
    assert starts == sorted(starts)
    assert sorted((q, round(h.start_seconds, 1)) for q, h in found) == sorted((q, float(m[2])) for q, m in listed)
    handles = [m[1] for _, m in listed]
    assert list(dict.fromkeys(handles)) == [f"c{i}" for i in range(1, len(set(handles)) + 1)]  # numbered in time order
    captions = [b["text"] for b in blocks if b["type"] == "text" and b["text"].startswith("clip ")]
    assert len(captions) == len(set(handles)) == sum(b["type"] == "image" for b in blocks)
    assert toolbox.frames_used == len(set(handles))
    # Bad lists come back as errors that say what is wrong, and spend nothing.
    for bad, says in (([], "non-empty list"), (["a white square", " "], "query[1]"), (["x"] * 9, "at most 8")):
        result = VideoToolbox(memory, max_frames=64).retrieve(bad, 1)
        assert says in blocks_text(result)


def test_tool_results_end_by_restating_the_question(memory):
    """The agent loop and the GRPO environment end each tool result with the question, after the budget
    line; an error result, or a toolbox given no question, does not."""
    from foveate.training.environment import VideoEnvironment

    question = "How many times did a white square appear?"
    calls = [
        {"name": "retrieve", "arguments": {"query": "a white square", "k": 2}},
        {"name": "zoom", "arguments": {"clip": "c1", "num_frames": 2}},
        {"name": "zoom", "arguments": {"start": 500.0, "end": 600.0}},
    ]
    outputs = [f"<tool_call>{json.dumps(c)}</tool_call>" for c in calls]
    ctl = ScriptedController(outputs + ['<answer>{"answer": "1", "evidence": ["c1"]}</answer>'])
    answer_question(memory, question, ["1", "2"], ctl, AgentConfig(max_frames=40, overview_images=1))
    results = [blocks_text(m["content"]) for m in ctl.calls[-1] if m["role"] == "tool"]
    assert [r.splitlines()[-1] for r in results[:2]] == [f"Question: {question}"] * 2
    assert "frame budget left: 36]" in results[1].splitlines()[-2]
    assert "Question:" not in results[2] and results[2].startswith("Error in zoom")

    env = VideoEnvironment(lambda video: memory, AgentConfig(max_frames=40, overview_images=1))
    env.reset(video="cuts.mp4", question=question, options=["1", "2"])
    assert [
        blocks_text(env.retrieve(query="a white square", k=2)),
        blocks_text(env.zoom(clip="c1", num_frames=2)),
    ] == (results[:2])
    assert "Question:" not in blocks_text(VideoToolbox(memory, max_frames=64).zoom(start=0.0, end=2.0))
