"""The oracle's SFT episodes: every path runs in the agent loop and ends with the gold answer and evidence;
its wrong guesses come from what retrieval really returned, and it names the clip that matches by the
handle the retrieve tool prints."""

import json
import re

import numpy as np
import pytest

from foveate.agent.answer import LETTERS, parse_answer
from foveate.agent.config import AgentConfig
from foveate.memory.config import IngestConfig
from foveate.tools import ClipHandles
from foveate.training.assets import event_log, world_rows
from foveate.training.episodes import oracle_episodes
from foveate.training.oracle import OracleConfig, OraclePolicy

AGENT = AgentConfig(max_steps=6, max_frames=48, overview_images=1, overview_chars=400)


@pytest.fixture(scope="module")
def world(small_world):
    return small_world


@pytest.fixture(scope="module")
def memory(world, tiny_embedder_spec, tmp_path_factory):
    from foveate.memory.video_memory import ingest

    row = world_rows(world)[0]
    return ingest(
        row.video,
        cache_root=tmp_path_factory.mktemp("cache"),
        embedder=tiny_embedder_spec,
        config=IngestConfig(thumbnail_max_side=64, embed_max_side=64),
    )


@pytest.fixture(scope="module")
def many_rows(world):
    """Every kind of question the world asks about the first video (its manifest holds only 6)."""
    from foveate.evals.synthetic.questions import make_questions

    video = world_rows(world)[0].video
    return [r for r in make_questions(event_log(world, video), str(video), "v", 60, 0) if r.evidence and r.answer]


def _calls(outputs):
    return [json.loads(o.split("<tool_call>")[1].split("</tool_call>")[0]) for o in outputs if "<tool_call>" in o]


def _handles(hits) -> dict:
    """The handles one retrieve call (an episode's first) gives ``hits``."""
    handles = ClipHandles()
    for h in hits:
        handles.name(h.start_seconds, h.end_seconds)
    return handles.as_dict()


def _printed_handles(summary: str) -> dict:
    """``{handle: (start, end)}`` as a retrieve result's lines print them (seconds to 0.1)."""
    lines = (re.match(r"^(c\d+) \[[\d:]+-[\d:]+\) ([\d.]+)-([\d.]+)s", line) for line in summary.splitlines())
    return {m[1]: (float(m[2]), float(m[3])) for m in lines if m}


def test_oracle_episodes_run_in_the_agent_and_cite_the_gold_evidence(world, memory):
    rows = [r for r in world_rows(world) if r.evidence and r.answer]
    config = OracleConfig(p_check_top_hit=0.5, p_wrong_window=0.3)
    episodes = list(oracle_episodes(rows, lambda v: memory, lambda v: event_log(world, v), AGENT, config, 3, seed=0))
    assert len(episodes) == 3 * len(rows)  # none dropped
    for ep in episodes:
        row = next(r for r in rows if ep.id.startswith(r.id))
        answer = ep.trajectory.answer
        assert answer.valid and [tuple(s) for s in answer.evidence] == [tuple(s) for s in row.evidence]
        assert all(t.error is None for s in ep.trajectory.steps for t in s.tool_turns)
    paths = {tuple(c["name"] for c in _calls([s.text for s in ep.trajectory.steps])) for ep in episodes}
    assert len(paths) >= 3  # varied paths, not one script


def test_wrong_first_guess_is_the_top_retrieved_clip_when_it_misses(world, memory):
    policy = OraclePolicy(
        OracleConfig(
            p_skip_retrieve=0, p_retrieve_only=0, p_check_top_hit=1, p_wrong_window=0, p_dense=0, p_thought=1
        ),
        AGENT,
    )
    checked = named = 0
    for n, row in enumerate(r for r in world_rows(world) if r.evidence and r.answer and r.task != "counting"):
        outputs = policy.outputs(
            row, event_log(world, row.video), memory.duration_seconds, np.random.default_rng(n), search=memory.search
        )
        calls = _calls(outputs)
        query, k = calls[0]["arguments"]["query"], calls[0]["arguments"]["k"]
        hits = memory.search(query, k)
        handles = _handles(hits)
        overlapping = [
            i for i, h in enumerate(hits, 1) if any(h.start_seconds < e and s < h.end_seconds for s, e in row.evidence)
        ]
        if not overlapping or overlapping[0] > 1:  # the top clip misses every event: look at it first, then correct
            checked += 1
            assert calls[1] == {"name": "zoom", "arguments": {"clip": "c1", "num_frames": 2}}
            assert handles["c1"] == (hits[0].start_seconds, hits[0].end_seconds)
            s, e = calls[2]["arguments"]["start"], calls[2]["arguments"]["end"]  # its own window: seconds
            assert any(s < ee and ss < e for ss, ee in row.evidence)
        first = [
            i
            for i, h in enumerate(hits, 1)
            if h.start_seconds < row.evidence[0][1] and row.evidence[0][0] < h.end_seconds
        ]
        if first and calls[-1]["name"] == "zoom":  # the clip it names shows the window it then looks at
            named += outputs[len(calls) - 1].startswith(f"Clip {list(handles)[first[0] - 1]} (")
        final = parse_answer(outputs[-1], row.options, memory.duration_seconds)
        assert final.valid and final.choice == row.answer
    assert checked >= 1 and named >= 1, (checked, named)


def test_retrieved_mode_looks_only_at_what_retrieval_shows_and_cites_it(world, memory):
    """Every number the oracle writes in look_at='retrieved' mode is a span the retrieve result listed."""
    agent = AgentConfig(max_steps=4, max_frames=16, overview_images=1, overview_chars=400)
    policy = OraclePolicy(OracleConfig(look_at="retrieved", p_dense=0.3), agent)
    rows = [r for r in world_rows(world) if r.evidence and r.answer]
    kept = 0
    for n, row in enumerate(rows):
        outputs = policy.outputs(
            row, event_log(world, row.video), memory.duration_seconds, np.random.default_rng(n), search=memory.search
        )
        if outputs is None:  # only when no retrieved clip shows the event
            continue
        kept += 1
        calls = _calls(outputs)
        assert calls[0]["name"] == "retrieve"
        if row.task == "order":  # one retrieve of every option, answered off its result: test below
            assert len(calls) == 1 and calls[0]["arguments"] == {"query": row.options, "k": 1}
            continue
        handles = _handles(memory.search(calls[0]["arguments"]["query"], calls[0]["arguments"]["k"]))
        assert all(set(c["arguments"]) & {"start", "end"} == set() for c in calls[1:])  # handles, not seconds
        looked = [handles[c["arguments"]["clip"]] for c in calls[1:]]
        assert looked and all(any(s < ee and ss < e for ss, ee in row.evidence) for s, e in looked)  # shows the event
        final = parse_answer(outputs[-1], row.options, memory.duration_seconds, handles)
        assert final.valid and final.choice == row.answer and final.evidence == looked
        assert json.loads(outputs[-1][8:-9])["evidence"] == [c["arguments"]["clip"] for c in calls[1:]]
    assert kept >= 1
    # The same rows through the agent loop: executed, none forced, no tool errors.
    episodes = list(
        oracle_episodes(
            rows, lambda v: memory, lambda v: event_log(world, v), agent, OracleConfig(look_at="retrieved"), 1, seed=0
        )
    )
    assert 1 <= len(episodes) <= len(rows)
    assert all(
        t.error is None and t.frames_spent > 0 for ep in episodes for s in ep.trajectory.steps for t in s.tool_turns
    )
    for ep in episodes:  # the handles the oracle wrote are the ones the retrieve tool printed
        retrieve, *looks = [t for s in ep.trajectory.steps for t in s.tool_turns]
        printed = _printed_handles(retrieve.summary)
        assert looks and all(printed[t.arguments["clip"]] == tuple(round(x, 1) for x in t.window) for t in looks)
        assert ep.trajectory.answer.evidence == [t.window for t in looks]


def test_the_cheap_looks_of_the_presets_spend_half_the_baselines_frames(world, memory, many_rows):
    """retrieve_k, zoom_frames and dense_fps bound what an oracle episode spends: 3 thumbnails and a look of
    at most 4 frames (a 1 fps dense_sample of a 4 s clip), or an order question's 5 thumbnails (one of each
    option) and no look; 2 overview frames: under half of 16 + 2."""
    from foveate.training.pipeline import CHEAP_LOOKS

    agent = AgentConfig(max_steps=4, max_frames=16, overview_images=2, overview_chars=400)
    oracle = OracleConfig(**{**CHEAP_LOOKS, "p_dense": 0.5})
    log = event_log(world, many_rows[0].video)
    episodes = list(oracle_episodes(many_rows, lambda v: memory, lambda v: log, agent, oracle, 2, seed=0))
    assert episodes
    turns = [[t for s in ep.trajectory.steps for t in s.tool_turns] for ep in episodes]
    for ts in turns:
        order = isinstance(ts[0].arguments["query"], list)  # one clip of each option, one thumbnail a clip
        assert ts[0].name == "retrieve" and ts[0].arguments["k"] == (1 if order else 3)
        assert not order or (len(ts) == 1 and 1 <= ts[0].frames_spent <= len(ts[0].arguments["query"]) == 5)
    dense = [t for ts in turns for t in ts if t.name == "dense_sample"]
    assert dense and all(t.arguments["fps"] == 1.0 and t.frames_spent <= 4 for t in dense)
    zooms = [t for ts in turns for t in ts if t.name == "zoom"]
    assert zooms and {t.arguments["num_frames"] for t in zooms} <= {2, 3}
    assert max(ep.trajectory.frames_used for ep in episodes) <= 9


def test_described_answers_name_what_the_frames_show(world, memory):
    """With describe, a one-event answer follows the world's caption of that event; other answers are unchanged."""
    from foveate.training.oracle import DESCRIBED_TASKS

    rows = [r for r in world_rows(world) if r.evidence and r.answer]
    log = event_log(world, rows[0].video)
    plain, described = OraclePolicy(OracleConfig()), OraclePolicy(OracleConfig(describe=True))
    seen = 0
    for n, row in enumerate(rows):
        a = plain.outputs(row, log, memory.duration_seconds, np.random.default_rng(n), search=memory.search)
        b = described.outputs(row, log, memory.duration_seconds, np.random.default_rng(n), search=memory.search)
        assert b[:-1] == a[:-1] and b[-1].endswith(a[-1])
        if row.task not in DESCRIBED_TASKS:
            assert b[-1] == a[-1]
            continue
        seen += 1
        sentence = b[-1].split("\n")[0]
        assert sentence.startswith("The frames show ") and sentence.endswith(".")
        gold = row.options[LETTERS.index(row.answer)]
        if row.task in ("needle", "direction"):
            assert gold in sentence.rstrip(".").split()  # the colour or the direction the answer names
        if row.task == "text":
            assert f"'{gold}'" in sentence  # the word as the card shows it, the option's own spelling
    assert seen


def test_without_unseen_motion_a_description_names_a_direction_only_after_a_motion_line(world, memory, many_rows):
    """The presets' looks (a zoom for a colour, a dense_sample for a direction): by default a zoomed sprite
    is described with its direction too, which its frames do not show; with ``describe_unseen_motion``
    off it is not, and episodes with a motion line (or a question naming the motion) keep theirs."""
    log = event_log(world, world_rows(world)[0].video)
    looks = {"describe": True, "look_at": "retrieved", "p_dense": 0.0, "retrieve_k": (3,)}

    def sentences(unseen: bool) -> list[tuple[bool, str]]:
        oracle = OraclePolicy(OracleConfig(**looks, describe_unseen_motion=unseen))
        said = []
        for n, row in enumerate(many_rows):
            outputs = oracle.outputs(row, log, memory.duration_seconds, np.random.default_rng(n), search=memory.search)
            if outputs is None or not outputs[-1].startswith("The frames show a "):
                continue
            shown = any(c["name"] == "dense_sample" for c in _calls(outputs)) or "that moved" in row.question
            said.append((shown, outputs[-1].split("\n")[0]))
        return said

    default, off = sentences(True), sentences(False)
    assert [shown for shown, _ in default] == [shown for shown, _ in off]  # the same episodes
    sprites = [(shown, a, b) for (shown, a), (_, b) in zip(default, off) if "text card" not in a]
    assert any(not shown for shown, _, _ in sprites) and any(shown for shown, _, _ in sprites)
    for shown, a, b in sprites:
        assert " moving " in a
        assert b == a if shown else (" moving " not in b and a.startswith(b.rstrip(".")))


def test_queries_name_what_the_question_counts_and_order_looks_at_the_answer(world, memory, many_rows):
    """A counting question's query names its colour and shape ("How many times did a blue cross appear?") or its
        colour ("How many blue shapes appeared?", not the "red" inside "appeared"); an order question's episode
        queries and looks at the sprite its answer names, not the first one on screen; "the square that moved left" is
    queried as the world's captions say it."""
    log = event_log(world, many_rows[0].video)
    rows = [r for r in many_rows if r.task in ("counting", "order")]
    policy = OraclePolicy(OracleConfig(p_skip_retrieve=0.0, p_retrieve_only=0.0, p_dense=0.0))
    seen = {"named": 0, "colour": 0, "order": 0}
    for n, row in enumerate(rows):
        calls = _calls(policy.outputs(row, log, memory.duration_seconds, np.random.default_rng(n), memory.search))
        query = calls[0]["arguments"]["query"]
        if row.task == "counting" and (named := re.search(r"did a (\w+) (\w+) appear", row.question)):
            seen["named"] += 1
            assert f"{named[1]} {named[2]}" in query, (row.question, query)
        elif row.task == "counting":
            seen["colour"] += 1
            colour = re.search(r"How many (\w+) shapes", row.question)[1]
            assert f"{colour} shapes" in query, (row.question, query)
        else:
            seen["order"] += 1
            gold = row.options[LETTERS.index(row.answer)].removeprefix("the ")
            assert gold in query, (row.question, gold, query)
            sprite = next(s for s in log.sprites if f"{s.colour} {s.shape}" == gold)
            look = calls[-1]["arguments"]
            assert look["start"] < sprite.end_seconds and sprite.start_seconds < look["end"]
    assert all(seen.values()), seen
    moved = [r for r in many_rows if r.task == "needle" and "that moved" in r.question]
    assert moved
    for n, row in enumerate(moved):
        calls = _calls(policy.outputs(row, log, memory.duration_seconds, np.random.default_rng(n), memory.search))
        shape, direction = re.search(r"the (\w+) that moved (\w+)", row.question).groups()
        assert f"{shape} moving {direction}" in calls[0]["arguments"]["query"]  # the caption's words


def test_an_order_question_is_answered_off_one_retrieve_of_every_option(world, memory, many_rows):
    """ "Which appeared first (last)?": the oracle retrieves all five options at once, by letter (k=1), and answers
    with the letter on the first (last) line of the result, citing its clip; when retrieval puts another option
    there, the question gets no episode. Run through the agent loop, the tool prints the lines the oracle read."""
    from foveate.tools.retrieve import in_time_order

    agent = AgentConfig(max_steps=4, max_frames=16, overview_images=1, overview_chars=400)
    policy = OraclePolicy(OracleConfig(look_at="retrieved"), agent)
    rows = [r for r in many_rows if r.task == "order"]
    log = event_log(world, rows[0].video)
    kept = []
    for n, row in enumerate(rows):
        found = in_time_order(memory.search, row.options, 1)
        assert [h.start_seconds for _, h in found] == sorted(h.start_seconds for _, h in found)
        line = found[0 if "appeared first" in row.question else -1]
        gold = row.options[LETTERS.index(row.answer)]
        outputs = policy.outputs(row, log, memory.duration_seconds, np.random.default_rng(n), memory.search)
        assert (outputs is None) == (line[0] != gold)
        if outputs is None:
            continue
        kept.append(row)
        (call,) = _calls(outputs)
        letters = list(LETTERS[: len(row.options)])
        assert call == {"name": "retrieve", "arguments": {"query": letters, "k": 1}}
        handles = _handles([h for _, h in found])
        final = parse_answer(outputs[-1], row.options, memory.duration_seconds, handles)
        assert final.valid and final.choice == row.answer and final.text == row.answer
        assert final.evidence == [(line[1].start_seconds, line[1].end_seconds)]
    assert kept, "no order question of the world got an episode"
    episodes = list(
        oracle_episodes(kept, lambda v: memory, lambda v: log, agent, OracleConfig(look_at="retrieved"), 1, seed=0)
    )
    assert len(episodes) == len(kept)
    for ep, row in zip(episodes, kept):
        (turn,) = [t for s in ep.trajectory.steps for t in s.tool_turns]
        assert turn.error is None and turn.frames_spent <= 5
        lines = turn.summary.splitlines()[1:6]  # "B. the red cross: c1 [0:08-0:12) ..."
        assert sorted(line.split(": c")[0] for line in lines) == [f"{x}. {o}" for x, o in zip(LETTERS, row.options)]
        first_or_last = lines[0 if "appeared first" in row.question else -1]
        assert first_or_last.startswith(f"{row.answer}. {row.options[LETTERS.index(row.answer)]}: c")
        assert ep.trajectory.answer.text == row.answer


def test_paths_that_see_no_event_are_counted_once_and_progress_follows_the_questions(world, memory, many_rows, caplog):
    """Only retrieved clips may be looked at: a path whose retrieval misses the event has no episode. Each miss is a
    debug line; one info line counts them; ``progress`` is told after every question."""
    import logging

    log = event_log(world, many_rows[0].video)
    seen = []
    with caplog.at_level(logging.DEBUG, logger="foveate.training.episodes"):
        episodes = list(
            oracle_episodes(
                many_rows,
                lambda v: memory,
                lambda v: log,
                AGENT,
                OracleConfig(look_at="retrieved"),
                2,
                seed=0,
                progress=lambda done, total: seen.append((done, total)),
            )
        )
    assert seen == [(n + 1, len(many_rows)) for n in range(len(many_rows))]
    misses = [r for r in caplog.records if r.levelno == logging.DEBUG and "no oracle episode" in r.getMessage()]
    counts = [
        r.getMessage() for r in caplog.records if r.levelno == logging.INFO and r.getMessage().startswith("oracle:")
    ]
    assert misses, "every path of the world's questions saw its event: nothing here is counted"
    assert len(episodes) + len(misses) == 2 * len(many_rows)  # no episode dropped for another reason
    (line,) = counts
    questions = {r.getMessage().split(":")[0] for r in misses}
    assert f"{len(misses)} of {2 * len(many_rows)} paths ({len(questions)} of {len(many_rows)} questions)" in line
