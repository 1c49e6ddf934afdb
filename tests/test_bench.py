"""`foveate bench ingest`: figures measured in child processes, consistent with each other."""

import json
import subprocess
import sys

import av
import pytest

from foveate.evals.bench import bench_ingest, make_synthetic_video, run_phase


@pytest.fixture(scope="module")
def small_synthetic(tmp_path_factory):
    return make_synthetic_video(
        tmp_path_factory.mktemp("bench") / "pan.mp4", minutes=0.05, width=160, height=96, fps=10, preset="ultrafast"
    )


def test_synthetic_video_has_the_requested_shape(small_synthetic):
    with av.open(str(small_synthetic)) as c:
        s = c.streams.video[0]
        assert (s.codec_context.name, s.width, s.height, int(s.average_rate)) == ("h264", 160, 96, 10)
        assert sum(1 for _ in c.decode(s)) == 30


def test_bench_figures_are_consistent(small_synthetic, tiny_embedder_spec):
    r = bench_ingest(small_synthetic, embedder=tiny_embedder_spec)
    phases = r["phases"]
    assert list(phases) == ["demux", "keyframes", "plain_decode", "rgb_decode", "uniform_seek", "overview", "index"]
    assert r["baseline"] == "plain_decode" and r["frames"] == 30 and r["duration_s"] == pytest.approx(3.0, abs=0.15)
    assert r["motion_source"] == "motion_vectors" and r["segments"] >= 1
    assert r["clips"] == 1 and r["clip_frames"] == "decoded"  # 3 s: too short to embed keyframes alone
    base = phases["plain_decode"]["process_seconds"]
    for name, p in phases.items():
        assert p["process_seconds"] > p["seconds"] > 0, name  # the process also starts Python and imports
        assert p["ratio_to_plain_decode"] == pytest.approx(base / p["process_seconds"], rel=0.05, abs=1e-3), name
        assert p["x_realtime"] == pytest.approx(r["duration_s"] / p["process_seconds"], rel=0.05, abs=0.01), name
        assert 20 < p["peak_rss_mb"] < 4096 and p["peak_rss_mb"] >= p["rss_after_imports_mb"], name
    assert phases["plain_decode"]["ratio_to_plain_decode"] == 1.0


def test_phases_touch_what_they_say(small_synthetic):
    demux = run_phase("demux", str(small_synthetic))
    keys = run_phase("keyframes", str(small_synthetic))
    seek = run_phase("uniform_seek", str(small_synthetic))
    assert demux["packets"] == 30 and demux["bytes"] > 0 and 1 <= demux["keyframes"] == keys["frames"] < 30
    assert seek["frames"] == 64


def test_phase_failure_is_reported_not_hung(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    with pytest.raises(RuntimeError, match="bad.mp4"):
        run_phase("overview", str(bad))


def test_cli_json_and_usage_errors(small_synthetic, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "foveate.cli", "bench", "ingest", str(small_synthetic), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["frames"] == 30
    twice = subprocess.run(
        [sys.executable, "-m", "foveate.cli", "bench", "ingest", str(small_synthetic), "--json", "--repeat", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert twice.returncode == 0, twice.stderr
    for phase in json.loads(twice.stdout)["phases"].values():  # the fastest of two runs is reported
        assert len(phase["process_seconds_runs"]) == 2 and phase["process_seconds"] == min(
            phase["process_seconds_runs"]
        )
    table = subprocess.run(
        [sys.executable, "-m", "foveate.cli", "bench", "ingest", str(small_synthetic)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (
        table.returncode == 0
        and "plain_decode (baseline)" in table.stdout.replace("\n", "")
        and "uniform_seek" in table.stdout
    )
    missing = subprocess.run(
        [sys.executable, "-m", "foveate.cli", "bench", "ingest", str(tmp_path / "nope.mp4")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr


def test_bench_retrieval_sets_the_coarse_index_against_the_full_one(tmp_path, tiny_embedder_spec):
    import numpy as np

    from tests.fixtures.videos import H, W, make_video

    def frame(i: int) -> np.ndarray:  # a keyframe every 2.5 s, the colour stepping with every frame
        return np.full((H, W, 3), (12 * (i % 20), 128, 24 * (i // 20)), np.uint8)

    video = make_video(tmp_path / "steps.mp4", frame, 10, n_frames=200, gop=25)
    cli = [sys.executable, "-m", "foveate.cli", "bench", "retrieval"]
    args = ["--embedder", tiny_embedder_spec, "--queries", "6", "--embed-max-frames", "2", "--json"]
    proc = subprocess.run([*cli, str(video), *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["full"]["embedded_at_build"] == r["full"]["keyframes"] == r["coarse"]["keyframes"] == 8
    assert r["coarse"]["embedded_at_build"] == 2 and r["full"]["clips"] == r["coarse"]["clips"] == 5
    s = r["search"]
    assert 0 < s["coarse_keyframes_embedded_mean"] <= 6  # each search, on a fresh coarse index, embeds some of the 6
    for key in ("recall_at_k_full", "recall_at_k_coarse", "overlap_with_full", "top1_agreement"):
        assert 0 <= s[key] <= 1, key
    missing = subprocess.run([*cli, str(tmp_path / "none.mp4"), *args], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "none.mp4: no such file" in missing.stderr
