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


def test_bench_figures_are_consistent(small_synthetic):
    r = bench_ingest(small_synthetic)
    assert r["full_decode_frames"] == 30 and r["duration_s"] == pytest.approx(3.0, abs=0.15)
    assert r["motion_source"] == "motion_vectors" and r["segments"] >= 1
    assert r["speedup_vs_full_decode"] == pytest.approx(r["full_decode_s"] / r["overview_s"], rel=0.05)
    assert r["overview_x_realtime"] == pytest.approx(r["duration_s"] / r["overview_s"], rel=0.05)
    assert 20 < r["overview_peak_rss_mb"] < 1024 and 20 < r["full_decode_peak_rss_mb"] < 1024
    assert r["overview_peak_rss_mb"] >= r["overview_rss_after_imports_mb"]


def test_phase_failure_is_reported_not_hung(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    with pytest.raises(RuntimeError, match="bad.mp4"):
        run_phase("_overview_phase", str(bad))


def test_cli_json_and_usage_errors(small_synthetic, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "foveate.cli", "bench", "ingest", str(small_synthetic), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["full_decode_frames"] == 30
    missing = subprocess.run(
        [sys.executable, "-m", "foveate.cli", "bench", "ingest", str(tmp_path / "nope.mp4")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
