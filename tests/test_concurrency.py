"""`foveate batch --concurrency`: many questions in flight across videos against an OpenAI-compatible server."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from foveate.agent.backends import load_controller
from foveate.agent.batch import run_batch
from foveate.agent.records import ManifestRow
from foveate.memory import IngestConfig, ingest
from tests.fixtures.chat_server import ChatServer, text_message, tool_call_message

ANSWER = '<answer>{"choice": "B", "answer": "blue", "evidence": [[3.0, 6.0]]}</answer>'


@pytest.fixture(scope="module")
def memories(cuts_video, colour_video, tiny_embedder_spec, tmp_path_factory):
    cache = tmp_path_factory.mktemp("c")
    return {
        str(v.path): ingest(
            v.path, cache_root=cache, embedder=tiny_embedder_spec, config=IngestConfig(clip_seconds=2.0)
        )
        for v in (cuts_video, colour_video)
    }


def _rows(memories, n):
    videos = sorted(memories)
    return [
        ManifestRow(id=f"q{i:02d}", video=videos[i % len(videos)], question="Which colour?", options=["red", "blue"])
        for i in range(n)
    ]


def _ids(path):
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_sixteen_in_flight_answer_32_questions_at_least_4x_faster_than_one(memories, tmp_path):
    """A server that takes 1 s per request: one question at a time costs 32 s, sixteen at a time about 2 s
    alone on the machine, up to about 4 s while another test worker takes a core (building the prompts is
    CPU work); one or two in flight would be 32 or 16 s."""
    rows = _rows(memories, 32)
    seconds, most = {}, {}
    for n in (1, 16):
        with ChatServer([text_message(ANSWER)], max_requests=40, lifetime_s=120, delay_s=1.0) as server:
            ctl = load_controller(f"openai:m@{server.url}")
            out = tmp_path / f"c{n}.jsonl"
            start = time.perf_counter()
            summary = run_batch(rows, out, ctl, memories.__getitem__, concurrency=n)
            seconds[n] = time.perf_counter() - start
            most[n] = server.most_in_flight
        assert (summary.answered, summary.failed) == (32, 0)
        assert sorted(_ids(out)) == [r.id for r in rows]  # each question exactly once
        assert len(server.requests) == 32
    print(f"32 questions, 1 s per request: {seconds[1]:.2f} s one at a time, {seconds[16]:.2f} s sixteen at a time")
    assert most[1] == 1 and most[16] >= 12  # (16 unless building a prompt outlasts a request)
    assert seconds[1] >= 32
    assert seconds[1] / seconds[16] >= 4, seconds


def test_tool_turns_in_flight_keep_each_episode_apart(memories, tmp_path):
    """Episodes that interleave on one event loop still see only their own turns: every question makes one
    zoom call (run in a worker thread) and then answers, and each trajectory holds exactly that."""
    rows = _rows(memories, 8)
    zoom = tool_call_message("zoom", start=1.0, end=3.0, num_frames=2)

    def reply(body):  # a first turn zooms; a turn after the episode's own zoom result answers
        return text_message(ANSWER) if any(m["role"] == "assistant" for m in body["messages"]) else zoom

    trace = tmp_path / "trace.jsonl"
    with ChatServer([reply], max_requests=16, lifetime_s=60, delay_s=0.5) as server:
        ctl = load_controller(f"openai:m@{server.url}")
        summary = run_batch(rows, tmp_path / "p.jsonl", ctl, memories.__getitem__, concurrency=8, trace=trace)
    assert (summary.answered, summary.failed) == (8, 0)
    assert server.most_in_flight >= 4  # the episodes did interleave
    trajectories = [json.loads(line) for line in trace.read_text().splitlines()]
    assert sorted(t["id"] for t in trajectories) == [r.id for r in rows]
    for t in trajectories:
        assert [turn["name"] for step in t["steps"] for turn in step["tool_turns"]] == ["zoom"]
        assert t["answer"]["choice"] == "B"
    # Every episode's second request carries its own zoom turn: 8 first and 8 second requests in all.
    seconds = [r for r in server.requests if any(m["role"] == "assistant" for m in r["messages"])]
    assert len(server.requests) == 16 and len(seconds) == 8


def test_a_video_that_cannot_be_loaded_fails_only_its_questions(memories, tmp_path):
    rows = _rows(memories, 6) + [
        ManifestRow(id=f"bad{i}", video=str(tmp_path / "missing.mp4"), question="?", options=["a", "b"])
        for i in range(3)
    ]

    def load(video):
        if video not in memories:
            raise FileNotFoundError(f"{video}: no such file")
        return memories[video]

    with ChatServer([text_message(ANSWER)], max_requests=10, lifetime_s=60, delay_s=0.05) as server:
        ctl = load_controller(f"openai:m@{server.url}")
        summary = run_batch(rows, tmp_path / "p.jsonl", ctl, load, concurrency=4)
    assert (summary.answered, summary.failed) == (6, 3)
    preds = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert {p["id"] for p in preds if p["error"]} == {"bad0", "bad1", "bad2"}
    assert all("no such file" in p["error"] for p in preds if p["error"])


def test_cli_concurrency_resumes_without_duplicates(cuts_video, colour_video, tiny_embedder_spec, tmp_path):
    """`foveate batch --concurrency 4` over two videos; a rerun finds nothing left and appends nothing."""
    manifest = tmp_path / "m.jsonl"
    videos = [str(cuts_video.path), str(colour_video.path)]
    rows = [{"id": f"q{i}", "video": videos[i % 2], "question": "?", "options": ["a", "b"]} for i in range(8)]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "pred.jsonl"
    with ChatServer([text_message(ANSWER)], max_requests=20, lifetime_s=120, delay_s=0.3) as server:
        cmd = [
            *(sys.executable, "-m", "foveate.cli", "batch", str(manifest), "--out", str(out)),
            *("--controller", f"openai:m@{server.url}", "--embedder", tiny_embedder_spec),
            *("--policy", "uniform", "--frames", "2", "--concurrency", "4"),
        ]
        first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        in_flight = server.most_in_flight
    assert first.returncode == 0, first.stderr[-2000:]
    assert again.returncode == 0, again.stderr[-2000:]
    assert sorted(_ids(out)) == sorted(r["id"] for r in rows)
    assert "8 skipped" in again.stderr
    assert in_flight == 4


def _conversation(i: int, image: bool) -> list[dict]:
    from PIL import Image

    content = [{"type": "text", "text": f"question {i}: " + "what colour " * i}]
    if image:
        content.append({"type": "image", "image": Image.new("RGB", (64 + 16 * i, 64), (40 * i, 90, 0))})
    return [{"role": "system", "content": [{"type": "text", "text": "Answer."}]}, {"role": "user", "content": content}]


def test_local_model_batches_concurrent_requests_and_answers_as_alone(tiny_controller_dir):
    """Requests made together on one event loop run as one left-padded generate call, and each gets what
    it would get alone (greedy decoding, prompts of different lengths, with and without images)."""
    import asyncio

    ctl = load_controller(str(tiny_controller_dir), max_new_tokens=12)
    conversations = [_conversation(i, image=i % 2 == 0) for i in range(5)]
    alone = [ctl.generate(c, None) for c in conversations]
    sizes = []
    generate_batch = ctl.generate_batch

    def counted(batch, tools):
        sizes.append(len(batch))
        return generate_batch(batch, tools)

    ctl.generate_batch = counted

    async def together():
        return await asyncio.gather(*(ctl.agenerate(c, None) for c in conversations))

    batched = asyncio.run(together())
    assert sizes == [5]
    assert [g.text for g in batched] == [g.text for g in alone]
    assert [g.tokens_in for g in batched] == [g.tokens_in for g in alone]
    assert len({g.tokens_in for g in alone}) == 5  # the prompts did need padding


def test_a_server_that_is_down_is_named_by_the_async_client_too(memories, tmp_path):
    from tests.fixtures.chat_server import refused_url

    url = refused_url()
    ctl = load_controller(f"openai:m@{url}", timeout=2.0)
    summary = run_batch(_rows(memories, 4), tmp_path / "p.jsonl", ctl, memories.__getitem__, concurrency=4)
    assert (summary.answered, summary.failed) == (0, 4)
    errors = [json.loads(line)["error"] for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert all(f"controller {url}" in e and "connection refused" in e for e in errors), errors
