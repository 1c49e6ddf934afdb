import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from memory import IngestConfig, ingest
from memory.clip_index import ClipIndex
from memory.errors import EmbedderError
from memory.transcript import parse_subtitles


def test_search_returns_sorted_spans_that_map_to_clips(moving_square_video, tiny_embedder_spec):
    mem = ingest(moving_square_video.path, embedder=tiny_embedder_spec, config=IngestConfig(clip_seconds=1.0))
    hits = mem.search("a red square", k=4)
    assert len(hits) == 4
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for h in hits:
        clip = mem.clips[h.clip_id]
        assert (h.start_seconds, h.end_seconds) == (clip.start_seconds, clip.end_seconds)
        assert 0 <= h.start_seconds < h.end_seconds <= mem.duration_seconds
    assert mem.clip_thumbnail(hits[0].clip_id).size[0] == 96


def test_cache_hit_and_embedder_change(moving_square_video, tiny_embedder_dir, tmp_path):
    from evals.synthetic.tiny_embedder import build_tiny_embedder

    spec = f"openclip:{tiny_embedder_dir}"
    first = ingest(moving_square_video.path, embedder=spec)
    parts = {p.name: p.stat().st_mtime_ns for p in first.cache_dir.iterdir() if p.is_dir()}
    again = ingest(moving_square_video.path, embedder=spec)
    assert {p.name: p.stat().st_mtime_ns for p in again.cache_dir.iterdir() if p.is_dir()} == parts  # nothing rebuilt
    other = build_tiny_embedder(tmp_path / "other", seed=1)
    ingest(moving_square_video.path, embedder=f"openclip:{other}")
    after = {p.name for p in first.cache_dir.iterdir() if p.is_dir()}
    assert len([n for n in after if n.startswith("clips-")]) == 2  # a new clip index
    assert len([n for n in after if n.startswith("overview-")]) == 1  # the overview is reused


def test_two_processes_index_the_same_video(cuts_video, tiny_embedder_spec, tmp_path):
    code = ("import sys; from memory import ingest; m = ingest(sys.argv[1], embedder=sys.argv[2]); "
            "print(len(m.search('x', 2)))")
    env = {**__import__("os").environ, "FOVEATE_CACHE": str(tmp_path / "shared-cache")}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(cuts_video.path), tiny_embedder_spec], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all(o[0].strip() == "2" for o in outs)
    video_dirs = list((tmp_path / "shared-cache").iterdir())
    assert len(video_dirs) == 1
    assert not [p for p in video_dirs[0].iterdir() if p.name.startswith(".tmp")]
    assert len([p for p in video_dirs[0].iterdir() if p.name.startswith("clips-")]) == 1


def test_ivf_index_past_threshold():
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(400, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = ClipIndex.build(vecs, np.arange(400), ivf_threshold=100)
    assert index.is_ivf
    ids, scores = index.search(vecs[7], 3)
    assert ids[0] == 7 and scores[0] == pytest.approx(1.0, abs=1e-5)


def test_sidecar_transcript_is_searchable(moving_square_video, tiny_embedder_spec, tmp_path):
    video = tmp_path / "talk.mp4"
    video.write_bytes(moving_square_video.path.read_bytes())
    video.with_suffix(".srt").write_text("1\n00:00:01,000 --> 00:00:02,500\nthe red square starts moving\n\n"
                                         "2\n00:00:04,000 --> 00:00:05,000\nnow it goes up\n")
    mem = ingest(video, embedder=tiny_embedder_spec)
    assert mem.has_transcript
    hit = mem.search_transcript("goes up", k=1)[0]
    assert (hit.start_seconds, hit.end_seconds, hit.source) == (4.0, 5.0, "transcript")
    assert parse_subtitles("WEBVTT\n\n00:01.000 --> 00:02.000\n<b>hi</b>\n")[0].text == "hi"


def test_default_embedder_offline_is_a_one_line_error(monkeypatch, caplog):
    from memory.embedder import load_embedder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EmbedderError, match="openclip:DIR") as err:
        load_embedder("openclip:ViT-B-32/laion2b_s34b_b79k")
    assert "\n" not in str(err.value)
    caplog.clear()  # open_clip itself logs the failed download at ERROR; that one is expected


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        samples = (np.sin(np.arange(16000) / 10) * 3000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def test_cli_index_bad_inputs_do_not_stop_good_ones(cuts_video, tiny_embedder_spec, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("hello\n" * 50)
    half = tmp_path / "half.mp4"
    data = cuts_video.path.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    audio = _audio_only(tmp_path / "audio.m4a")
    videos = [empty, text, half, audio, cuts_video.path]
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "index", *map(str, videos), "--embedder", tiny_embedder_spec, "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    rows = {Path(r["video"]).name: r for r in map(json.loads, proc.stdout.splitlines())}
    assert rows["cuts.mp4"]["status"] == "ok" and rows["cuts.mp4"]["clips"] == 3
    for bad in ("empty.mp4", "notes.mp4", "audio.m4a"):
        assert rows[bad]["status"] == "error" and bad in rows[bad]["error"] and "\n" not in rows[bad]["error"]
    assert "no video stream" in rows["audio.m4a"]["error"]
    # A truncated file either indexes what it holds or fails cleanly; it never crashes.
    assert rows["half.mp4"]["status"] in ("ok", "error")


def test_cli_overview_json_and_image(shared_videos_dir, tmp_path):
    webm = shared_videos_dir / "moviepy" / "big_buck_bunny_432_433.webm"
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "overview", str(webm), "--json", "--image", str(tmp_path / "o.png")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["motion_source"] == "frame_diff"
    assert (tmp_path / "o.png").exists()
