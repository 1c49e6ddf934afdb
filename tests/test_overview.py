"""The overview: segments, persistence, the render budget, the plot, and every real clip."""

import numpy as np
import pytest
from PIL import Image

from foveate.memory.blocks import blocks_text, count_images
from foveate.memory.config import IngestConfig
from foveate.memory.keyframes import jpeg_bytes
from foveate.memory.motion import MotionTimeline
from foveate.memory.overview import Overview, build_overview, format_time
from foveate.memory.probe import probe
from foveate.memory.segments import Segment


def _overview(truth, tmp_path, **cfg) -> Overview:
    return build_overview(truth.path, probe(truth.path), IngestConfig(**cfg), tmp_path / "ov")


def _assert_contiguous(ov: Overview) -> None:
    assert ov.segments[0].start_seconds == 0
    assert ov.segments[-1].end_seconds == pytest.approx(ov.duration_seconds, abs=1e-3)
    assert all(a.end_seconds == b.start_seconds for a, b in zip(ov.segments, ov.segments[1:]))
    assert all(s.end_seconds > s.start_seconds for s in ov.segments)


def test_square_segments_follow_the_motion(moving_square_video, tmp_path):
    ov = _overview(moving_square_video, tmp_path)
    assert ov.motion_source == "motion_vectors"
    assert [s.objects for s in ov.segments] == ["moving right", "moving up"]
    assert ov.segments[1].start_seconds == pytest.approx(3.0, abs=0.5)
    assert abs(ov.segments[0].objects_degrees) < 30 and abs(ov.segments[1].objects_degrees - 90) < 30
    assert all(s.camera == "still" for s in ov.segments)
    _assert_contiguous(ov)


def test_pan_segment_says_camera(panning_video, tmp_path):
    ov = _overview(panning_video, tmp_path)
    assert [s.camera for s in ov.segments] == ["pan right"]
    assert ov.segments[0].camera_motion > 4 * ov.segments[0].object_motion


@pytest.mark.parametrize("fixture", ["cuts_video", "colour_video", "vfr_video", "rotated_video", "moving_square_vp8"])
def test_segments_cover_the_video(fixture, request, tmp_path):
    ov = _overview(request.getfixturevalue(fixture), tmp_path, max_segment_seconds=2.5)
    _assert_contiguous(ov)
    assert all(s.end_seconds - s.start_seconds <= 2.5 + 1e-6 for s in ov.segments)
    assert all(s.keyframe is not None and 0 <= s.keyframe < len(ov.keyframe_seconds) for s in ov.segments)


def test_thumbnails_are_rotated_for_display(rotated_video, tmp_path):
    ov = _overview(rotated_video, tmp_path)
    assert (ov.width, ov.height) == (240, 320)
    assert ov.thumbnail(0).size == (120, 160)


def test_save_load_roundtrip_and_save_elsewhere(cuts_video, tmp_path):
    ov = _overview(cuts_video, tmp_path)
    loaded = Overview.load(tmp_path / "ov")
    assert loaded == ov
    loaded.save(tmp_path / "copy")
    again = Overview.load(tmp_path / "copy")
    assert np.array_equal(np.asarray(again.thumbnail(1)), np.asarray(ov.thumbnail(1)))
    assert not list((tmp_path / "copy").rglob(".*"))  # no temp files left behind


def test_progress_reaches_one(cuts_video, tmp_path):
    seen = []
    build_overview(cuts_video.path, probe(cuts_video.path), IngestConfig(), tmp_path / "ov", progress=seen.append)
    assert seen[-1] == 1.0 and seen == sorted(seen) and len(seen) >= 5


def test_render_lists_segments_and_thumbnails(cuts_video, tmp_path):
    ov = _overview(cuts_video, tmp_path)
    blocks = ov.render(max_images=16, max_chars=4000)
    text = blocks_text(blocks)
    assert "0:03" in text and "3.0" in text and "cut" in text
    assert 1 <= count_images(blocks) <= len(ov.segments)


def _long_overview(tmp_path, hours: float, segment_seconds: float = 20.0) -> Overview:
    """A synthetic overview of a long video (no decoding): one segment and thumbnail per 20 s."""
    duration = hours * 3600
    n = int(duration / segment_seconds)
    jpegs = [jpeg_bytes(Image.new("RGB", (16, 12), (i % 256, 0, 0))) for i in range(n)]
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "thumbs.jpgs").write_bytes(b"".join(jpegs))
    bins = int(duration / 0.5)
    zeros = [0.0] * bins
    timeline = MotionTimeline(
        bin_seconds=0.5,
        source="motion_vectors",
        magnitude=zeros,
        camera_dx=zeros,
        camera_dy=zeros,
        local_fraction=zeros,
        local_dx=zeros,
        local_dy=zeros,
        intra_fraction=zeros,
    )
    segments = [
        Segment(
            start_seconds=i * segment_seconds,
            end_seconds=(i + 1) * segment_seconds,
            starts_with_cut=i % 3 == 0,
            motion=0.01,
            camera="pan left" if i % 2 else "still",
            objects="moving up",
            keyframe=i,
        )
        for i in range(n)
    ]
    ov = Overview(
        duration_seconds=duration,
        width=640,
        height=360,
        motion_source="motion_vectors",
        timeline=timeline,
        cuts_seconds=[s.start_seconds for s in segments if s.starts_with_cut and s.start_seconds > 0],
        keyframe_seconds=[s.start_seconds for s in segments],
        thumbnail_sizes=[len(j) for j in jpegs],
        segments=segments,
    )
    ov.save(tmp_path)
    return Overview.load(tmp_path)


def _text_chars(blocks) -> int:
    return sum(len(b["text"]) for b in blocks if b["type"] == "text")


def test_render_stays_within_budget_for_long_videos(tmp_path):
    short, long = _long_overview(tmp_path / "s", 0.05), _long_overview(tmp_path / "l", 2.0)
    for ov in (short, long):
        for max_images, max_chars in ((16, 4000), (4, 800), (0, 300)):
            blocks = ov.render(max_images=max_images, max_chars=max_chars)
            assert _text_chars(blocks) <= max_chars
            assert count_images(blocks) <= max_images
    assert _text_chars(short.render()) < _text_chars(long.render())
    assert "2:00:00" in blocks_text(long.render())  # h:mm:ss above an hour
    assert count_images(long.render(max_images=16)) >= 8  # spread over the whole video
    times = [b["text"] for b in long.render(max_images=8) if b["type"] == "text" and b["text"].startswith("t=")]
    assert times[0].startswith("t=0:00") and times[-1].startswith("t=1:")


def test_plot_writes_a_png(cuts_video, tmp_path):
    ov = _overview(cuts_video, tmp_path)
    ov.plot(tmp_path / "ov.png")
    with Image.open(tmp_path / "ov.png") as im:
        assert im.size[0] >= 800 and im.size[1] >= 300


def test_format_time():
    assert [format_time(s) for s in (0, 59.4, 61, 3600, 3725)] == ["0:00", "0:59", "1:01", "1:00:00", "1:02:05"]


def test_every_shared_clip_builds_an_overview(shared_videos_dir, tmp_path):
    clips = sorted(p for p in shared_videos_dir.rglob("*") if p.suffix in (".mp4", ".avi", ".webm"))
    assert clips, f"no clips under {shared_videos_dir}"
    for clip in clips:  # (how fast: `foveate bench ingest`, not a timed test)
        info = probe(clip)
        ov = build_overview(clip, info, IngestConfig(), tmp_path / clip.stem)
        _assert_contiguous(ov)
        assert ov.motion_source == ("frame_diff" if info.codec == "vp8" else "motion_vectors"), clip
        assert ov.keyframe_seconds and ov.keyframe_seconds[0] < 1.0, clip
        assert len(ov.timeline.magnitude) == int(np.ceil(info.duration_seconds / 0.5 - 1e-9)), clip
        assert max(ov.timeline.magnitude) > 0, clip  # real footage moves somewhere
        w, h = info.display_size
        assert max(ov.thumbnail(0).size) == min(160, max(w, h)), clip
