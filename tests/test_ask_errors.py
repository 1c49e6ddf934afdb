"""`foveate ask` against a controller server that fails: one line naming the URL, exit 1, the trace kept,
the interactive session alive; model text printed as text; output paths checked before any work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from foveate.agent.backends import ControllerError, load_controller
from foveate.agent.backends.openai_backend import OpenAIController
from foveate.agent.config import AgentConfig
from foveate.agent.graph import answer_question
from foveate.memory import IngestConfig, ingest
from tests.fixtures.chat_server import ChatServer, refused_url, text_message, tool_call_message

ANSWER = '<answer>{"choice": "B", "answer": "blue", "evidence": [[3.0, 6.0]]}</answer>'
TOOL = tool_call_message("zoom", start=1, end=3, num_frames=2)


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("ask-cache")


@pytest.fixture(scope="module")
def memory(cuts_video, tiny_embedder_spec, shared_cache):
    return ingest(
        cuts_video.path, cache_root=shared_cache, embedder=tiny_embedder_spec, config=IngestConfig(clip_seconds=2.0)
    )


def ask(video, embedder, cache, *args, stdin=None, timeout=90):
    cmd = [sys.executable, "-m", "foveate.cli", "ask", str(video), "--embedder", embedder]
    cmd += ["--cache-dir", str(cache), "--max-steps", "3", *args]  # the last of a repeated flag wins
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(proc, *needles):
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "script, why",
    [
        (["500"], "HTTP 500"),
        (["html"], "malformed response"),
        (["empty_choices"], "no choices"),
    ],
)
def test_broken_replies_become_one_controller_error(memory, script, why):
    with ChatServer(script) as srv:
        ctl = OpenAIController("m", srv.url, tries=1)
        with pytest.raises(ControllerError) as info:
            answer_question(memory, "q?", ["a", "b"], ctl, AgentConfig(overview_images=0))
    assert str(info.value).startswith(f"controller {srv.url}: ") and why in str(info.value)
    assert "\n" not in str(info.value) and info.value.trajectory.steps == []


def test_transient_errors_are_retried_and_steps_before_a_failure_are_kept(memory):
    with ChatServer(["500", TOOL, "500"]) as srv:
        ctl = OpenAIController("m", srv.url, tries=2)
        with pytest.raises(ControllerError, match="HTTP 500") as info:
            answer_question(memory, "q?", ["a", "b"], ctl, AgentConfig(overview_images=0))
    assert len(srv.requests) == 4  # 500 retried -> tool call; 500, retried once more, then given up
    partial = info.value.trajectory
    assert [t.name for s in partial.steps for t in s.tool_turns] == ["zoom"] and partial.answer is None


def test_a_hanging_server_times_out(memory):
    with ChatServer(["hang"]) as srv:
        ctl = load_controller(f"openai:m@{srv.url}", timeout=0.5)
        ctl.client = ctl.client.with_options(max_retries=0)
        start = time.monotonic()
        with pytest.raises(ControllerError, match="timeout"):
            answer_question(memory, "q?", None, ctl, AgentConfig(overview_images=0))
    assert time.monotonic() - start < 5


def test_refused_connection_names_the_url_and_keeps_the_trace(cuts_video, tiny_embedder_spec, shared_cache, tmp_path):
    url = refused_url()
    trace = tmp_path / "t.jsonl"
    proc = ask(cuts_video.path, tiny_embedder_spec, shared_cache, "q?", "--controller", f"openai:m@{url}",
               "--trace", str(trace))  # fmt: skip
    assert proc.returncode == 1
    assert_one_line_error(proc, f"controller {url}", "connection refused", "vllm serve")
    row = json.loads(trace.read_text())
    assert row["answer"] is None and row["steps"] == [] and "connection refused" in row["error"]


def test_the_session_survives_a_failed_question_and_keeps_its_steps(
    cuts_video, tiny_embedder_spec, shared_cache, tmp_path
):
    trace = tmp_path / "t.jsonl"
    with ChatServer([TOOL, "500", "500", "500", text_message(ANSWER)]) as srv:
        proc = ask(cuts_video.path, tiny_embedder_spec, shared_cache, "--controller", f"openai:m@{srv.url}",
                   "--trace", str(trace), stdin="first?\nsecond?\n")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_one_line_error(proc, f"controller {srv.url}: HTTP 500")
    assert len(srv.requests) == 1 + 3 + 1  # the failing request was tried 3 times
    assert "Answer: (B) blue" in proc.stdout
    first, second = (json.loads(line) for line in trace.read_text().splitlines())
    assert [t["name"] for t in first["steps"][0]["tool_turns"]] == ["zoom"] and first["answer"] is None
    assert "HTTP 500" in first["error"] and second["question"] == "second?" and second["answer"]["choice"] == "B"


def test_model_text_is_printed_as_text(cuts_video, tiny_embedder_spec, shared_cache):
    evil = '<answer>{"choice": "A", "answer": "x [/INST] [/x] [bold]y \\u001b[31m red \\u0000 nul"}</answer>'
    script = [tool_call_message("retrieve", query="[/x] [/INST]", k=1), text_message(evil)]
    with ChatServer(script) as srv:
        proc = ask(cuts_video.path, tiny_embedder_spec, shared_cache, "q?", "--controller", f"openai:m@{srv.url}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "x [/INST] [/x] [bold]y \\x1b[31m red \\x00 nul" in proc.stdout
    assert "\x1b" not in proc.stdout and "\x00" not in proc.stdout
    assert "[/x] [/INST]" in proc.stderr and "Traceback" not in proc.stderr


def test_ctrl_c_cancels_promptly(cuts_video, tiny_embedder_spec, shared_cache):
    with ChatServer(["hang"]) as srv:
        cmd = [sys.executable, "-m", "foveate.cli", "ask", str(cuts_video.path), "q?", "--controller",
               f"openai:m@{srv.url}", "--embedder", tiny_embedder_spec, "--cache-dir", str(shared_cache)]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not srv.requests and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert srv.requests, "the controller was never asked"
        proc.send_signal(signal.SIGINT)
        start = time.monotonic()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 130 and time.monotonic() - start < 5
    assert "interrupted" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "args, code, needle",
    [
        (["--controller", ""], 2, "--controller is empty"),
        (["--trace", "{tmp}/missing/t.jsonl"], 1, "does not exist"),
        (["--trace", "{tmp}"], 1, "is a directory"),
        (["--controller", "{tmp}/no-such-controller"], 1, "no-such-controller: no such model directory"),
        (["--controller", "Qwen/Not-A-Model-7B"], 1, "Qwen/Not-A-Model-7B: the controller is not in the local"),
        (["--controller", "openai:no-url"], 1, "expected openai:MODEL@URL"),
        (["--embedder", "openclip:{tmp}", "--controller", "openai:m@http://127.0.0.1:9/v1"], 1, "lacks open_clip"),
    ],
)
def test_bad_flags_fail_before_any_work(cuts_video, tiny_embedder_spec, tmp_path, args, code, needle):
    cache = tmp_path / "cache"
    args = [a.format(tmp=tmp_path) for a in args]
    proc = ask(cuts_video.path, tiny_embedder_spec, cache, "q?", *args, timeout=60)
    assert proc.returncode == code
    assert_one_line_error(proc, needle)
    assert not cache.exists()  # nothing was indexed


def test_options_without_a_question_fail_before_any_work(cuts_video, tiny_embedder_spec, tmp_path):
    cache = tmp_path / "cache"
    proc = ask(cuts_video.path, tiny_embedder_spec, cache, "--option", "a person", "--option", "a table")
    assert proc.returncode == 2
    assert_one_line_error(proc, "--option needs a QUESTION")
    assert not cache.exists()


def test_answer_is_printed_before_the_trace_fails(memory, tmp_path, capsys):
    from foveate.agent.backends.scripted import ScriptedController
    from foveate.cli.ask import _answer_one

    ok = _answer_one(memory, ScriptedController([ANSWER]), AgentConfig(), "q?", ["a", "b"], False, tmp_path)
    out, err = capsys.readouterr()
    assert not ok and "Answer: (B) blue" in out and "--trace" in err


def test_paths_with_markup_are_printed_as_text(cuts_video, tmp_path):
    folder = tmp_path / "odd[" / "[bold]x"
    folder.mkdir(parents=True)
    video = folder / "v [i].mp4"
    video.write_bytes(cuts_video.path.read_bytes())
    env = {**os.environ, "COLUMNS": "400"}
    proc = subprocess.run(
        [sys.executable, "-m", "foveate.cli", "index", str(video), str(folder / "missing[x].mp4"), "--no-embed",
         "--cache-dir", str(tmp_path / "c")],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"ok {video}" in proc.stderr and str(folder / "missing[x].mp4") in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "foveate.cli", "overview", str(folder / "missing[x].mp4"), "--image",
         str(folder / "o[/b].png")],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert proc.returncode == 1 and str(folder / "missing[x].mp4") in assert_one_line_error(proc)


def test_an_answer_that_picks_no_option_says_so(cuts_video, tiny_embedder_spec, shared_cache):
    """A letter past the options (or words naming none of them) is printed as the model wrote it, flagged."""
    stray = '<answer>{"answer": "E", "evidence": [[3.0, 6.0]]}</answer>'
    for reply, printed in ((stray, "Answer: E (names none of the 2 options)"), (ANSWER, "Answer: (B) blue\n")):
        with ChatServer([text_message(reply)]) as srv:
            proc = ask(cuts_video.path, tiny_embedder_spec, shared_cache, "which colour?", "--controller",
                       f"openai:m@{srv.url}", "--option", "red", "--option", "blue")  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert printed in proc.stdout
