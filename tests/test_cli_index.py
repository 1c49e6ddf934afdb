"""`foveate index` / `foveate overview`: exit codes, one-line errors, JSON rows, real clips."""

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest


def _foveate(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "foveate.cli", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        samples = (np.sin(np.arange(16000) / 10) * 3000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 16000
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def test_bad_inputs_get_one_line_errors_and_good_ones_are_indexed(cuts_video, tiny_embedder_spec, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("hello\n" * 50)
    half = tmp_path / "half.mp4"
    data = cuts_video.path.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    audio = _audio_only(tmp_path / "audio.m4a")
    missing = tmp_path / "missing.mp4"
    proc = _foveate(
        "index", empty, text, half, audio, missing, cuts_video.path, "--embedder", tiny_embedder_spec, "--json"
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    rows = {Path(r["video"]).name: r for r in map(json.loads, proc.stdout.splitlines())}
    assert list(rows) == ["empty.mp4", "notes.mp4", "half.mp4", "audio.m4a", "missing.mp4", "cuts.mp4"]
    good = rows["cuts.mp4"]
    assert good["status"] == "ok" and good["clips"] == 3 and good["duration_s"] == pytest.approx(12.0, abs=0.2)
    assert good["segments"] >= 4 and good["seconds"] > 0  # three hard cuts give at least four segments
    for bad in ("empty.mp4", "notes.mp4", "half.mp4", "audio.m4a", "missing.mp4"):
        row = rows[bad]
        assert row["status"] == "error" and row["error"].startswith(str(tmp_path / bad)) and "\n" not in row["error"]
    assert "no video stream" in rows["audio.m4a"]["error"]
    assert "empty" in rows["empty.mp4"]["error"] and "no such file" in rows["missing.mp4"]["error"]


def test_human_output_and_cache_hit(cuts_video, tmp_path):
    first = _foveate("index", cuts_video.path, "--no-embed", "--cache-dir", tmp_path)
    second = _foveate("index", cuts_video.path, "--no-embed", "--cache-dir", tmp_path, "--json")
    assert first.returncode == 0 and "ok" in first.stderr and first.stdout == ""
    row = json.loads(second.stdout)
    assert row["status"] == "ok" and row["clips"] == 0 and row["cached"] is True
    assert len(list(tmp_path.iterdir())) == 1


def test_usage_errors_exit_2():
    assert _foveate("index").returncode == 2
    proc = _foveate("index", "whatever.mp4", "--embedder", "clip:nope")
    assert proc.returncode == 2 and "unknown embedder spec" in proc.stderr and "Traceback" not in proc.stderr


def test_overview_text_json_and_image(moving_square_video, tmp_path):
    text = _foveate("overview", moving_square_video.path)
    assert text.returncode == 0 and "Video overview" in text.stdout
    proc = _foveate("overview", moving_square_video.path, "--json", "--image", tmp_path / "o.png")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["motion_source"] == "motion_vectors" and data["duration_s"] == pytest.approx(6.0, abs=0.2)
    assert data["n_segments"] == len(data["segments"]) >= 1 and "timeline" not in data
    assert (tmp_path / "o.png").read_bytes()[:4] == b"\x89PNG"
    bad = _foveate("overview", tmp_path / "o.png")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and str(tmp_path / "o.png") in bad.stderr


REPRESENTATIVE = [
    "moviepy/big_buck_bunny_432_433.webm",  # VP8: no motion vectors
    "mmaction2/tests_data_test.avi",  # MPEG-4 Part 2 in AVI
    "ask-anything/making_cake.mp4",  # portrait
    "moviepy/video_with_failing_audio.mp4",
]  # broken audio stream


def _index_shared(videos, spec, cache):
    proc = _foveate("index", *videos, "--embedder", spec, "--cache-dir", cache, "--json", timeout=900)
    assert "Traceback" not in proc.stderr + proc.stdout
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["video"] for r in rows] == [str(v) for v in videos]
    for row in rows:
        if row["status"] == "ok":
            assert row["clips"] >= 1 and row["duration_s"] > 0 and row["segments"] >= 1
        else:
            assert row["error"].startswith(row["video"]) and "\n" not in row["error"]
    assert proc.returncode == (1 if any(r["status"] != "ok" for r in rows) else 0)
    return rows


def test_representative_shared_clips_index(shared_videos_dir, tiny_embedder_spec, tmp_path):
    rows = _index_shared([shared_videos_dir / v for v in REPRESENTATIVE], tiny_embedder_spec, tmp_path)
    assert all(r["status"] == "ok" for r in rows)
    assert rows[0]["motion_source"] == "frame_diff" and rows[1]["motion_source"] == "motion_vectors"


@pytest.mark.slow
def test_every_shared_clip_indexes_or_fails_cleanly(shared_videos_dir, tiny_embedder_spec, tmp_path):
    videos = sorted(
        p for p in shared_videos_dir.rglob("*") if p.suffix.lower() in (".mp4", ".avi", ".webm", ".mkv", ".mov")
    )
    rows = _index_shared(videos, tiny_embedder_spec, tmp_path)
    webm = [r for r in rows if r["video"].endswith(".webm") and r["status"] == "ok"]
    assert webm and all(r["motion_source"] == "frame_diff" for r in webm)  # VP8: no motion vectors exported
