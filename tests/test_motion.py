"""Motion timeline: direction conventions, camera vs object motion, the frame-difference fallback."""

import math

import numpy as np
import pytest

from foveate.memory.config import IngestConfig
from foveate.memory.motion import MotionScanner, TimelineBuilder, direction_degrees, direction_label
from foveate.memory.probe import probe


def _timeline(truth, **cfg):
    info = probe(truth.path)
    config = IngestConfig(**cfg)
    scanner = MotionScanner(truth.path, info, config)
    builder = TimelineBuilder(config.bin_seconds)
    for sample in scanner:
        if sample.motion is not None:
            builder.add(sample.motion)
    return builder.build(info.duration_seconds, scanner.source)


def _inner_bins(tl, start, end):
    """Bins fully inside [start, end) with one bin of slack at each boundary."""
    return range(int(start / tl.bin_seconds) + 1, int(end / tl.bin_seconds) - 1)


def test_direction_conventions_have_image_y_pointing_down():
    assert direction_label(1, 0) == "right" and direction_degrees(1, 0) == 0
    assert direction_label(0, -1) == "up" and direction_degrees(0, -1) == 90
    assert direction_label(-1, 0) == "left" and direction_degrees(-1, 0) == 180
    assert direction_label(0, 1) == "down" and direction_degrees(0, 1) == 270


@pytest.mark.parametrize("fixture", ["moving_square_video", "moving_square_mpeg4"])
def test_square_moves_right_then_up(fixture, request):
    truth = request.getfixturevalue(fixture)
    tl = _timeline(truth)
    assert tl.source == "motion_vectors" and tl.n_bins == 12
    for name, degrees in (("right", 0.0), ("up", 90.0)):
        for i in _inner_bins(tl, *truth.notes[name]):
            assert tl.object_direction(i) == name, (name, i)
            assert abs((tl.object_degrees(i) - degrees + 180) % 360 - 180) < 30
            assert tl.local_fraction[i] > 0
    # 8 px/frame on a 400 px diagonal, then 5 px/frame: object speed is measured, not just its sign
    right = np.mean([np.hypot(tl.local_dx[i], tl.local_dy[i]) for i in _inner_bins(tl, 0, 3)])
    assert right == pytest.approx(8 / 400, rel=0.35)


def test_static_background_is_not_camera_motion(moving_square_video):
    tl = _timeline(moving_square_video)
    assert tl.camera_magnitude().max() < 0.002


def test_pan_is_camera_motion_not_object_motion(panning_video):
    tl = _timeline(panning_video)
    cam = tl.camera_magnitude()[1:-1]
    assert cam.min() == pytest.approx(4 / 400, rel=0.25)  # 4 px/frame on a 400 px diagonal
    assert (tl.local_magnitude()[1:-1] < cam / 4).all()
    assert all(tl.camera_direction(i) == "right" for i in range(1, tl.n_bins - 1))
    assert all(
        abs(tl.camera_degrees(i) - 0.0) < 10 or abs(tl.camera_degrees(i) - 360) < 10 for i in range(1, tl.n_bins - 1)
    )


def test_vp8_falls_back_to_frame_differences(moving_square_vp8):
    tl = _timeline(moving_square_vp8)
    assert tl.source == "frame_diff" and tl.n_bins == 12
    assert np.mean(tl.local_fraction[1:-1]) > 0  # the square's changed blocks
    assert tl.camera_magnitude()[1:-1].max() < 0.01  # the background stays put


def test_frame_diff_fallback_sees_a_pan(panning_video, monkeypatch):
    monkeypatch.setattr("foveate.memory.motion.MV_CODECS", frozenset())
    tl = _timeline(panning_video)
    assert tl.source == "frame_diff"
    assert sum(tl.camera_direction(i) == "right" for i in range(1, tl.n_bins - 1)) >= tl.n_bins - 3


def test_time_ranges_yield_every_frame_once_with_the_same_motion(panning_video):
    info = probe(panning_video.path)
    config = IngestConfig()
    whole = list(MotionScanner(panning_video.path, info, config))
    parts = [
        list(MotionScanner(panning_video.path, info, config, start_seconds=a, end_seconds=b))
        for a, b in ((0.0, 2.0), (2.0, 3.5), (3.5, math.inf))
    ]
    joined = [s for part in parts for s in part]
    assert [s.time_seconds for s in joined] == [s.time_seconds for s in whole]
    assert all(p[0].time_seconds >= a for p, a in zip(parts, (0.0, 2.0, 3.5)))
    # Later ranges decode from the keyframe before them first, so their vectors are the same.
    by_time = {s.time_seconds: s for s in whole}
    for s in joined:
        assert s.intra_fraction == pytest.approx(by_time[s.time_seconds].intra_fraction)


def test_parallel_ranges_give_the_same_overview(cuts_video, tmp_path):
    from foveate.memory.overview import Overview, build_overview, scan_ranges

    info = probe(cuts_video.path)
    assert len(scan_ranges(info.duration_seconds, 0.5, workers=2, min_range_seconds=5.0)) == 2
    assert len(scan_ranges(info.duration_seconds, 0.5, workers=2)) == 1  # short videos stay whole
    one = build_overview(cuts_video.path, info, IngestConfig(decode_threads=1), tmp_path / "one")
    two = build_overview(
        cuts_video.path, info, IngestConfig(decode_threads=2), tmp_path / "two", min_range_seconds=5.0
    )
    assert two.timeline == one.timeline
    assert two.cuts_seconds == one.cuts_seconds
    # A join may add one thumbnail (the new range starts without the previous one's last).
    assert (
        set(one.keyframe_seconds) <= set(two.keyframe_seconds)
        and len(two.keyframe_seconds) <= len(one.keyframe_seconds) + 1
    )
    assert len(two.thumbnail_sizes) == len(two.keyframe_seconds)
    assert (tmp_path / "two" / "thumbs.jpgs").stat().st_size == sum(two.thumbnail_sizes)
    # Each thumbnail reads back from the one file, equal to the single-range scan's at the same time.
    for k, t in enumerate(two.keyframe_seconds):
        if t in one.keyframe_seconds:
            a = np.asarray(two.thumbnail(k), np.int16)
            b = np.asarray(Overview.load(tmp_path / "one").thumbnail(one.keyframe_seconds.index(t)), np.int16)
            assert a.shape == b.shape and np.abs(a - b).mean() < 2.0


def test_only_a_few_frames_per_bin_are_analysed(panning_video):
    info = probe(panning_video.path)
    samples = list(MotionScanner(panning_video.path, info, IngestConfig(bin_seconds=1.0), samples_per_bin=2))
    analysed = [s.time_seconds for s in samples if s.motion is not None]
    assert len(samples) == 50 and 8 <= len(analysed) <= 12


def test_motion_in_a_window_is_measured_from_its_own_frames(moving_square_video, panning_video, tmp_path):
    """What dense_sample reports: the overview may have measured only a few frames of the window."""
    from foveate.memory import ingest

    square = ingest(moving_square_video.path, embedder=None, cache_root=tmp_path)
    assert square.motion_in(0.5, 2.5)["objects"] == "moving right"
    assert square.motion_in(3.5, 5.5)["objects"] == "moving up"
    pan = ingest(panning_video.path, embedder=None, cache_root=tmp_path)
    summary = pan.motion_in(1.0, 4.0)
    assert summary["camera"] == "pan right" and summary["source"] == "motion_vectors"


def test_dense_sample_says_which_way_things_move(moving_square_video, tmp_path):
    from foveate.memory import ingest
    from foveate.memory.blocks import blocks_text
    from foveate.tools import VideoToolbox

    toolbox = VideoToolbox(ingest(moving_square_video.path, embedder=None, cache_root=tmp_path), max_frames=32)
    text = blocks_text(toolbox.dense_sample(3.5, 5.5, fps=2))
    assert "motion in this window (motion vectors): camera still, objects moving up" in text, text
