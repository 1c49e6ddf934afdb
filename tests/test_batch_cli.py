"""`foveate batch` bookkeeping through the real CLI: retries, exit codes, the output lock, bad flags and paths."""

import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from foveate.agent.batch import lock_path_for, repair_tail

ANSWER = '<answer>{"choice": "B", "answer": "blue", "evidence": [[3.0, 6.0]]}</answer>'


def run(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "foveate.cli", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


def one_line_error(r, code=1):
    assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "script.json"
    path.write_text(json.dumps([ANSWER] * 50))
    return path


@pytest.fixture
def manifest(tmp_path):
    rows = [{"id": "q1", "video": "v.mp4", "question": "?", "options": ["a", "b"], "answer": "B"}]
    return write_jsonl(tmp_path / "m.jsonl", rows)


def batch_args(manifest, out, script, *extra):
    return ("batch", manifest, "--out", out, "--controller", f"scripted:{script}", "--policy", "uniform", *extra)


def test_a_rerun_retries_failed_rows_and_eval_counts_the_last_row(cuts_video, tiny_embedder_spec, script, tmp_path):
    later = tmp_path / "later.mp4"  # missing in the first run, like a server that is down
    rows = [
        {"id": f"{v}{i}", "video": str(path), "question": "?", "options": ["a", "b"], "answer": "B"}
        for v, path in (("now", cuts_video.path), ("later", later))
        for i in range(2)
    ]
    manifest = write_jsonl(tmp_path / "m.jsonl", rows)
    out = tmp_path / "pred.jsonl"
    args = batch_args(manifest, out, script, "--frames", 2, "--embedder", tiny_embedder_spec)

    first = run(*args)
    assert first.returncode == 1 and "Traceback" not in first.stderr, first.stderr
    assert "4 questions: 2 answered, 2 failed, 0 skipped (already done)" in first.stderr

    shutil.copy(cuts_video.path, later)
    second = run(*args)
    assert second.returncode == 0, second.stderr
    assert "4 questions: 2 answered, 0 failed, 2 skipped (already done)" in second.stderr
    preds = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(preds) == 6
    last = {p["id"]: p for p in preds}
    assert sorted(last) == sorted(r["id"] for r in rows)
    assert all(p["error"] is None and p["choice"] == "B" for p in last.values())

    ev = run("eval", manifest, out, "--json")
    assert ev.returncode == 0, ev.stderr
    assert "2 id(s) had several rows; the last row counts" in ev.stderr
    metrics = json.loads(ev.stdout.strip().splitlines()[-1])["uniform"]
    assert metrics["repeated_ids"] == 2
    assert metrics["overall"]["error_rows"] == 0 and metrics["overall"]["accuracy"] == 1.0


def test_a_second_run_on_a_locked_output_names_the_holder_and_exits_1(manifest, script, tmp_path):
    out = tmp_path / "pred.jsonl"
    with open(lock_path_for(out), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        line = one_line_error(run(*batch_args(manifest, out, script)))
        assert f"pid {os.getpid()}" in line and "another batch run" in line
        assert out.read_text() == ""


def test_wait_waits_for_the_lock_holder(manifest, script, tmp_path):
    out = write_jsonl(tmp_path / "pred.jsonl", [{"id": "q1", "answer": "blue", "choice": "B", "frames_used": 2}])
    lock = open(lock_path_for(out), "w")
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    proc = subprocess.Popen(
        [sys.executable, "-m", "foveate.cli", *map(str, batch_args(manifest, out, script, "--wait"))],
        stderr=subprocess.PIPE,
        text=True,
    )
    # Release the lock only once the child says it waits: on a slow machine its start-up (torch's
    # import) can take longer than any fixed sleep, and it would then find the lock free.
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    first = ""
    while "waiting for pid" not in first and (line := proc.stderr.readline()):
        first += line
    watchdog.cancel()
    assert f"waiting for pid {os.getpid()}" in first, first
    time.sleep(0.5)
    assert proc.poll() is None  # still waiting
    lock.close()
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 0, first + rest
    assert "0 answered, 0 failed, 1 skipped" in rest


@pytest.mark.parametrize(
    "flags",
    [("--frames", "0"), ("--frames", "100000"), ("--workers", "0"), ("--concurrency", "1025"), ("--max-steps", "0")],
)
def test_numeric_flags_are_bounded(manifest, script, tmp_path, flags):
    r = run(*batch_args(manifest, tmp_path / "pred.jsonl", script, *flags))
    assert r.returncode == 2 and "Invalid value" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "pred.jsonl").exists()


@pytest.mark.parametrize("flags", [("--max-frames", "100000"), ("--max-steps", "0")])
def test_ask_bounds_its_budgets(tmp_path, flags):
    r = run("ask", tmp_path / "v.mp4", "?", *flags)
    assert r.returncode == 2 and "Invalid value" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_unusable_outputs_are_refused_before_any_work(manifest, script, tmp_path):
    before = manifest.read_text()
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("")
    copy = tmp_path / "copy.jsonl"
    copy.write_text(before)
    for out, words in (
        (tmp_path / "folder", "is a folder"),
        (tmp_path / "file" / "pred.jsonl", "cannot write"),
        (manifest, "is the manifest"),
        (copy, "holds manifest rows"),
    ):
        line = one_line_error(run(*batch_args(manifest, out, script)))
        assert str(out) in line and words in line
    assert manifest.read_text() == before and copy.read_text() == before


def test_manifest_problems_are_one_line_errors(script, tmp_path):
    out = tmp_path / "pred.jsonl"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert "no rows" in one_line_error(run(*batch_args(empty, out, script)))

    ok = {"id": "q1", "video": "v.mp4", "question": "?"}
    bad = write_jsonl(tmp_path / "bad.jsonl", [ok, {"id": "q2", "video": "v.mp4"}])
    line = one_line_error(run(*batch_args(bad, out, script)))
    assert f"{bad}:2:" in line and "question" in line

    eleven = write_jsonl(tmp_path / "eleven.jsonl", [ok | {"options": [f"o{i}" for i in range(11)]}])
    line = one_line_error(run(*batch_args(eleven, out, script)))
    assert f"{eleven}:1:" in line and "at most 10" in line


def test_repair_tail_cuts_only_a_partial_line(tmp_path):
    complete = tmp_path / "complete.jsonl"
    complete.write_text('{"id": "a"}\n{"id": "b"}')
    repair_tail(complete)
    assert complete.read_text() == '{"id": "a"}\n{"id": "b"}\n'
    partial = tmp_path / "partial.jsonl"
    partial.write_text('{"id": "a"}\n{"id": "b", "answ')
    repair_tail(partial)
    assert partial.read_text() == '{"id": "a"}\n'
