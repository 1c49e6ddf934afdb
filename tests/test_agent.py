import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foveate.agent.backends import load_controller
from foveate.agent.backends.scripted import ScriptedController
from foveate.agent.config import AgentConfig
from foveate.agent.graph import answer_question
from foveate.memory import IngestConfig, ingest
from foveate.tools import tool_schemas

SCHEMAS = Path(__file__).parent / "fixtures" / "tool_schemas.json"


@pytest.fixture(scope="module")
def memory(cuts_video, tiny_embedder_spec, tmp_path_factory):
    return ingest(
        cuts_video.path,
        cache_root=tmp_path_factory.mktemp("c"),
        embedder=tiny_embedder_spec,
        config=IngestConfig(clip_seconds=2.0),
    )


def call(name, **args):
    return f"<tool_call>{json.dumps({'name': name, 'arguments': args})}</tool_call>"


ANSWER = '<answer>{"choice": "B", "answer": "blue", "evidence": [[3.0, 6.0]]}</answer>'


def test_tool_schemas_snapshot():
    assert tool_schemas() == json.loads(SCHEMAS.read_text()), (
        "a docstring edit changed the prompt: update the snapshot"
    )


def test_tools_are_listed_in_the_order_trl_lists_the_environments_methods():
    """GRPO prompts (TRL renders the environment's methods, found with inspect.getmembers) and the agent's
    prompts must list the tools in one order, or the trained policy sees another tool block at inference."""
    import inspect

    from foveate.training.environment import VideoEnvironment

    trl_order = [
        name
        for name, _ in inspect.getmembers(VideoEnvironment, predicate=inspect.isfunction)
        if not name.startswith("_") and name not in ("reset", "get_reward")
    ]
    assert [s["function"]["name"] for s in tool_schemas()] == trl_order


def test_tool_calls_run_with_their_arguments(memory):
    ctl = ScriptedController(
        [
            call("zoom", start=3.0, end=6.0, num_frames=3),
            call("dense_sample", start=0, end=2, fps=2),
            call("retrieve", query="a white square", k=2),
            ANSWER,
        ]
    )
    traj = answer_question(memory, "q?", ["red", "blue"], ctl, AgentConfig(max_frames=40, overview_images=2))
    turns = [t for s in traj.steps for t in s.tool_turns]
    assert [(t.name, t.frames_spent, t.error) for t in turns] == [
        ("zoom", 3, None),
        ("dense_sample", 4, None),
        ("retrieve", 2, None),
    ]
    assert turns[0].summary.startswith("zoom 3.0-6.0s: 3 frames")
    assert traj.answer.choice == "B" and traj.answer.evidence == [(3.0, 6.0)] and traj.answer.valid
    assert traj.frames_used == 2 + 9 and traj.tool_calls == 3
    tool_msgs = [m for m in ctl.calls[-1] if m["role"] == "tool"]
    assert sum(b["type"] == "image" for b in tool_msgs[0]["content"]) == 3


@pytest.mark.parametrize(
    "bad, error",
    [
        ('<tool_call>{"name": "zoom", "arguments": {"start": 1,}}</tool_call>', "not valid JSON"),
        (call("teleport", start=1), "unknown tool"),
        (call("zoom", start=2.0), "end missing"),
        (call("zoom", stat=2.0, end=4.0), "bad arguments"),
        (call("zoom", clip="c1"), "no clip has been retrieved yet"),
        (call("zoom", start=500.0, end=600.0), "outside the video"),
        (call("zoom", start=5.0, end=2.0), "greater than start"),
        (call("retrieve", query="", k=3), "non-empty"),
        (call("retrieve", query="a star", k=11), "k must be 1 to 10"),
        (call("zoom", start=1.0, end=2.0, num_frames=9), "num_frames must be 1 to 8"),
        (call("zoom", start=1.0, end=2.0, num_frames=2.5), "whole number"),
        (call("zoom", start=True, end=2.0), "start must be a number"),
        (call("dense_sample", start=1.0, end=2.0, fps=0), "fps must be more than 0 and at most 30"),
        (call("dense_sample", start="1e999", end=2.0), "finite"),
    ],
)
def test_malformed_calls_become_error_results(memory, bad, error):
    traj = answer_question(memory, "q?", ["a", "b"], ScriptedController([bad, ANSWER]), AgentConfig())
    turn = traj.steps[0].tool_turns[0]
    assert turn.error and error in turn.error and turn.frames_spent == 0
    assert traj.answer.valid


def test_budgets_stop_the_loop(memory):
    ctl = ScriptedController([call("zoom", start=0, end=4, num_frames=8)] * 20)
    traj = answer_question(memory, "q?", None, ctl, AgentConfig(max_steps=4, max_frames=100))
    assert len(traj.steps) == 4 and traj.steps[-1].forced_final and not traj.answer.valid
    ctl = ScriptedController([call("dense_sample", start=0, end=10, fps=3)] * 20)
    traj = answer_question(memory, "q?", None, ctl, AgentConfig(max_steps=10, max_frames=20))
    assert traj.frames_used - 0 <= 20 + 8 and traj.steps[-1].forced_final


def test_empty_output_and_no_answer_still_end_with_an_answer(memory):
    traj = answer_question(memory, "q?", ["x", "y"], ScriptedController(["", "I think B."]), AgentConfig(max_steps=2))
    assert traj.answer is not None and not traj.answer.valid and traj.answer.choice == "B"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.one_of(
            st.text(max_size=60),
            st.builds(
                lambda n, s, e: call(n, start=s, end=e),
                st.sampled_from(["zoom", "dense_sample", "nope"]),
                st.floats(-50, 50, allow_nan=False),
                st.floats(-50, 50, allow_nan=False),
            ),
            st.builds(lambda j: f"<tool_call>{j}</tool_call>", st.text(max_size=30)),
            st.builds(
                lambda c, a, b: f'<answer>{{"choice": "{c}", "evidence": [[{a}, {b}]]}}</answer>',
                st.sampled_from("ABZ"),
                st.integers(-5, 20),
                st.integers(-5, 20),
            ),
        ),
        max_size=8,
    ),
    st.integers(1, 5),
)
def test_random_controller_outputs_never_crash(memory, outputs, max_steps):
    traj = answer_question(
        memory, "q?", ["a", "b"], ScriptedController(outputs), AgentConfig(max_steps=max_steps, max_frames=12)
    )
    assert traj.answer is not None and len(traj.steps) <= max_steps
    assert all(0 <= s < e <= memory.duration_seconds for s, e in traj.answer.evidence)
    assert traj.answer.choice in (None, "A", "B")


def test_ask_end_to_end_with_tiny_model(cuts_video, tiny_embedder_spec, tiny_controller_dir, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "foveate.cli",
            "ask",
            str(cuts_video.path),
            "What moves?",
            "--option",
            "a square",
            "--option",
            "a circle",
            "--controller",
            str(tiny_controller_dir),
            "--embedder",
            tiny_embedder_spec,
            "--max-steps",
            "2",
            "--json",
            "--trace",
            str(tmp_path / "t.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(out) >= {"answer", "choice", "evidence", "frames_used", "tool_calls", "steps", "latency_s"}
    assert isinstance(out["evidence"], list) and out["steps"] <= 2 and out["frames_used"] >= 1
    assert (tmp_path / "t.jsonl").read_text().count("\n") == 1


class _ChatServer(BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _ChatServer.requests.append(body)
        first = len(_ChatServer.requests) == 1
        message = (
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "zoom", "arguments": json.dumps({"start": 1, "end": 3, "num_frames": 2})},
                    }
                ],
            }
            if first
            else {"role": "assistant", "content": ANSWER}
        )
        payload = json.dumps(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_openai_backend_against_a_local_server(memory):
    server = HTTPServer(("127.0.0.1", 0), _ChatServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ctl = load_controller(f"openai:test-model@http://127.0.0.1:{server.server_port}/v1")
        traj = answer_question(memory, "q?", ["a", "b"], ctl, AgentConfig(overview_images=1))
    finally:
        server.shutdown()
    first, second = _ChatServer.requests[:2]
    assert [t["function"]["name"] for t in first["tools"]] == ["dense_sample", "retrieve", "zoom"]
    urls = [p["image_url"]["url"] for m in first["messages"] for p in m["content"] if p["type"] == "image_url"]
    assert urls and urls[0].startswith("data:image/jpeg;base64,")
    assert traj.steps[0].tool_turns[0].name == "zoom" and traj.steps[0].tool_turns[0].frames_spent == 2
    assert sum(p["type"] == "image_url" for m in second["messages"] for p in m["content"]) == len(urls) + 2
    assert traj.answer.choice == "B" and traj.tokens_in == 22


def test_batch_survives_sigkill_and_resumes(cuts_video, tiny_embedder_spec, tmp_path):
    rows = [{"id": f"q{i}", "video": str(cuts_video.path), "question": "?", "options": ["a", "b"]} for i in range(12)]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    script = tmp_path / "slow.json"
    script.write_text(json.dumps([ANSWER] * 100))
    out = tmp_path / "pred.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "foveate.cli",
        "batch",
        str(manifest),
        "--out",
        str(out),
        "--controller",
        f"scripted:{script}",
        "--embedder",
        tiny_embedder_spec,
        "--policy",
        "uniform",
        "--frames",
        "2",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 3):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with open(out, "a") as f:
        f.write('{"id": "q5", "answ')  # what a writer killed mid-line would leave
    assert subprocess.run(cmd, capture_output=True, timeout=300).returncode == 0
    lines = out.read_text().splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert sorted(ids) == sorted(r["id"] for r in rows) and len(ids) == len(set(ids))
