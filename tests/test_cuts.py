"""Scene cuts: found within one bin of the truth, no false cuts on motion, a thumbnail at each cut."""

import pytest

from foveate.memory.config import IngestConfig
from foveate.memory.overview import build_overview
from foveate.memory.probe import probe


def _overview(truth, tmp_path, **cfg):
    return build_overview(truth.path, probe(truth.path), IngestConfig(**cfg), tmp_path / "ov")


def test_hard_cuts_found_within_one_bin(cuts_video, tmp_path):
    ov = _overview(cuts_video, tmp_path)
    assert len(ov.cuts_seconds) == len(cuts_video.cuts_seconds), ov.cuts_seconds
    for found, truth in zip(ov.cuts_seconds, cuts_video.cuts_seconds):
        assert abs(found - truth) <= ov.timeline.bin_seconds
    for cut in ov.cuts_seconds:  # the timeline shows each cut as an intra-coded spike
        assert ov.timeline.intra_fraction[int(cut / ov.timeline.bin_seconds)] >= 0.3


def test_cut_frames_get_thumbnails_and_start_segments(cuts_video, tmp_path):
    ov = _overview(cuts_video, tmp_path)
    for cut in ov.cuts_seconds:
        assert any(abs(k - cut) < 1e-6 for k in ov.keyframe_seconds)
        starts = [s for s in ov.segments if s.starts_with_cut]
        assert any(abs(s.start_seconds - cut) < 1e-6 for s in starts)


def test_cuts_found_with_the_frame_difference_fallback(cuts_video, tmp_path, monkeypatch):
    monkeypatch.setattr("foveate.memory.motion.MV_CODECS", frozenset())
    ov = _overview(cuts_video, tmp_path)
    assert ov.motion_source == "frame_diff"
    assert len(ov.cuts_seconds) == 3
    assert all(abs(f - t) <= 0.5 for f, t in zip(ov.cuts_seconds, cuts_video.cuts_seconds))


@pytest.mark.parametrize(
    "fixture", ["moving_square_video", "panning_video", "rotated_video", "moving_square_vp8", "moving_square_mpeg4"]
)
def test_no_false_cuts_on_motion(fixture, request, tmp_path):
    assert _overview(request.getfixturevalue(fixture), tmp_path).cuts_seconds == []


def test_gradual_colour_drift_is_not_a_cut_but_a_jump_is(colour_video, tmp_path):
    # red rises 12 levels per frame (gradual); at frame 20 red drops to 0 and blue jumps to 120
    assert _overview(colour_video, tmp_path).cuts_seconds == [2.0]


def test_min_cut_gap_drops_cuts_too_close_together(cuts_video, tmp_path):
    ov = _overview(cuts_video, tmp_path, min_cut_gap_seconds=3.5)
    assert ov.cuts_seconds == pytest.approx([3.0, 9.0], abs=0.5)
