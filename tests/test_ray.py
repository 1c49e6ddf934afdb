"""`foveate batch --ray` and `foveate index --ray` on a local 2-worker Ray cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("ray")

from tests.fixtures.chat_server import ChatServer, text_message  # noqa: E402
from tests.fixtures.videos import make_video, texture  # noqa: E402

ANSWER = '<answer>{"choice": "B", "answer": "b", "evidence": [[1.0, 2.0]]}</answer>'


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """40 questions over 8 short videos, 5 each."""
    folder = tmp_path_factory.mktemp("ray")
    rows = []
    for k in range(8):
        background = texture(96, 128, k, block=8 + 2 * k)

        def frame(i: int, bg=background):
            f = bg.copy()
            x = 5 + 2 * (i % 40)
            f[30:50, x : x + 20] = 255
            return f

        video = make_video(folder / f"v{k}.mp4", frame, 10, (128, 96), n_frames=40, gop=20)
        rows += [{"id": f"v{k}-q{j}", "video": str(video), "question": "?", "options": ["a", "b"]} for j in range(5)]
    path = folder / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def ray_env(tmp_path):
    """The environment of one test's Ray cluster; every process it leaves behind (a killed driver's cluster
    outlives it) is found by a mark in its environment and killed at the end."""
    mark = uuid.uuid4().hex
    short = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_TMPDIR": short, "FOVEATE_TEST_RAY_MARK": mark}
    env.pop("RAY_ADDRESS", None)
    yield env
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and f"FOVEATE_TEST_RAY_MARK={mark}".encode() in (proc / "environ").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


def _batch(manifest, out, url, embedder, *extra) -> list[str]:
    return [
        *(sys.executable, "-m", "foveate.cli", "batch", str(manifest), "--out", str(out)),
        *("--controller", f"openai:m@{url}", "--embedder", embedder, "--policy", "uniform", "--frames", "2"),
        *("--ray", "--ray-workers", "2", *extra),
    ]


def _ids(out: Path) -> list[str]:
    return [json.loads(line)["id"] for line in out.read_text().splitlines()] if out.exists() else []


def _wait_rows(out: Path, n: int, proc, timeout: float = 240) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and len(_ids(out)) < n:
        time.sleep(0.1)
    return len(_ids(out))


def _answerer_pids() -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(b"ray::Answerer"):
                pids.append(int(proc.name))
        except OSError:
            pass
    return pids


def test_a_killed_worker_costs_no_question_and_duplicates_none(manifest, tiny_embedder_spec, ray_env, tmp_path):
    out = tmp_path / "pred.jsonl"
    with ChatServer([text_message(ANSWER)], max_requests=200, lifetime_s=300, delay_s=0.2) as server:
        proc = subprocess.Popen(
            _batch(manifest, out, server.url, tiny_embedder_spec), env=ray_env, stderr=subprocess.PIPE, text=True
        )
        reached = _wait_rows(out, 8, proc)
        victims = _answerer_pids()
        assert reached >= 8 and victims, "the run ended before a worker could be killed"
        os.kill(victims[0], signal.SIGKILL)
        _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    ids = _ids(out)
    assert len(ids) == 40 and len(set(ids)) == 40  # every question once, the killed worker's ones included
    assert not [line for line in out.read_text().splitlines() if json.loads(line)["error"]]
    assert "40 answered, 0 failed" in stderr


def test_a_rerun_after_the_driver_is_killed_finishes_without_duplicates(
    manifest, tiny_embedder_spec, ray_env, tmp_path
):
    out = tmp_path / "pred.jsonl"
    with ChatServer([text_message(ANSWER)], max_requests=200, lifetime_s=300, delay_s=0.2) as server:
        cmd = _batch(manifest, out, server.url, tiny_embedder_spec)
        proc = subprocess.Popen(cmd, env=ray_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        reached = _wait_rows(out, 10, proc)
        proc.kill()  # SIGKILL: no cleanup, the lock released by the kernel
        proc.wait()
        assert 10 <= reached < 40
        written = len(_ids(out))
        again = subprocess.run(cmd, env=ray_env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    ids = _ids(out)
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 40
    assert f"{40 - written} answered, 0 failed, {written} skipped" in again.stderr


def test_index_on_ray_fills_the_shared_cache(manifest, tiny_embedder_spec, ray_env, tmp_path):
    videos = sorted({json.loads(line)["video"] for line in manifest.read_text().splitlines()})[:4]
    missing = tmp_path / "missing.mp4"
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "foveate.cli", "index", *videos, str(missing), "--cache-dir", str(cache)]
    cmd += ["--embedder", tiny_embedder_spec, "--json", "--ray", "--ray-workers", "2"]
    r = subprocess.run(cmd, env=ray_env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr[-3000:]  # one video failed
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted(row["video"] for row in rows) == sorted([*videos, str(missing)])
    assert {row["video"]: row["status"] for row in rows}[str(missing)] == "error"
    assert all(row["status"] == "ok" and row["clips"] > 0 for row in rows if row["video"] != str(missing))
    # the workers wrote the cache: indexing here again finds every part built
    local = [sys.executable, "-m", "foveate.cli", "index", *videos, "--cache-dir", str(cache)]
    local += ["--embedder", tiny_embedder_spec, "--json"]
    again = subprocess.run(local, env=ray_env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert all(json.loads(line)["cached"] for line in again.stdout.splitlines())
