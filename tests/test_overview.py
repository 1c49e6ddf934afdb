from pathlib import Path

import pytest

from memory.config import IngestConfig
from memory.errors import NoVideoStreamError, VideoOpenError
from memory.overview import Overview, build_overview
from memory.probe import probe


def _overview(truth, tmp_path, **cfg) -> Overview:
    return build_overview(truth.path, probe(truth.path), IngestConfig(**cfg), tmp_path / "ov")


def test_square_moves_right_then_up(moving_square_video, tmp_path):
    ov = _overview(moving_square_video, tmp_path)
    tl = ov.timeline
    assert ov.motion_source == "motion_vectors"
    bins = lambda a, b: range(int(a / tl.bin_seconds) + 1, int(b / tl.bin_seconds) - 1)  # noqa: E731 one bin slack
    assert all(tl.object_direction(i) == "right" for i in bins(0.0, 3.0))
    assert all(tl.object_direction(i) == "up" for i in bins(3.0, 6.0))
    assert [s.objects for s in ov.segments] == ["moving right", "moving up"]


def test_pan_is_camera_motion(panning_video, tmp_path):
    ov = _overview(panning_video, tmp_path)
    tl = ov.timeline
    cam = tl.camera_magnitude()[1:-1]
    assert cam.min() > 0.005 and (tl.local_magnitude()[1:-1] < cam / 4).all()
    assert ov.segments[0].camera == "pan right"


def test_cuts_found_within_one_bin(cuts_video, tmp_path):
    ov = _overview(cuts_video, tmp_path)
    assert len(ov.cuts_seconds) == len(cuts_video.cuts_seconds)
    for found, truth in zip(ov.cuts_seconds, cuts_video.cuts_seconds):
        assert abs(found - truth) <= 0.5
    starts = [s.start_seconds for s in ov.segments]
    assert starts[0] == 0 and ov.segments[-1].end_seconds == pytest.approx(cuts_video.duration_seconds, abs=0.2)
    assert all(a.end_seconds == b.start_seconds for a, b in zip(ov.segments, ov.segments[1:]))
    for cut in cuts_video.cuts_seconds:
        assert min(abs(s - cut) for s in starts) <= 0.5


def test_render_respects_budget_and_roundtrips(cuts_video, tmp_path):
    ov = _overview(cuts_video, tmp_path, min_segment_seconds=0.5, max_segment_seconds=1.0)
    assert len(ov.segments) >= 12
    blocks = ov.render(max_images=3, max_chars=400)
    assert len(blocks[0]["text"]) <= 400
    assert sum(b["type"] == "image" for b in blocks) <= 3
    assert Overview.load(tmp_path / "ov").render(3, 400)[0] == blocks[0]
    ov.plot(tmp_path / "ov.png")
    assert (tmp_path / "ov.png").stat().st_size > 1000


def test_bad_inputs_raise_typed_errors(tmp_path, moving_square_video):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "text.mp4"
    text.write_text("not a video\n" * 100)
    for p in (empty, text, tmp_path / "missing.mp4"):
        with pytest.raises(VideoOpenError, match=str(p.name)):
            probe(p)


def test_every_shared_clip_builds_an_overview(shared_videos_dir, tmp_path):
    clips = sorted(p for p in shared_videos_dir.rglob("*") if p.suffix in (".mp4", ".avi", ".webm"))
    assert clips
    for clip in clips:
        info = probe(clip)
        ov = build_overview(clip, info, IngestConfig(), tmp_path / clip.stem)
        assert ov.segments and ov.segments[-1].end_seconds == pytest.approx(info.duration_seconds, abs=0.01)
        assert ov.motion_source == ("frame_diff" if info.codec == "vp8" else "motion_vectors"), clip
