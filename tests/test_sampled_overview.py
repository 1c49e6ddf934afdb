"""The overview of longer videos: packet sizes for every frame, motion decoded only after keyframes.

Truth comes from how the videos were made: the benchmark's camera-pan generator (the pan turns
every 5 s), and real clips stitched end to end (every clip boundary is a cut).
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from foveate.evals.bench import make_synthetic_video
from foveate.memory.config import IngestConfig
from foveate.memory.motion import direction_label
from foveate.memory.overview import build_overview, scan_ranges
from foveate.memory.packets import B_FRAME, I_FRAME, P_FRAME, read_packets
from foveate.memory.probe import probe
from foveate.memory.sampled import cut_chains, sample_frames
from tests.fixtures.videos import stitch_clips


@pytest.fixture(scope="module")
def pan_video(tmp_path_factory):
    """90 s, 320x180, 10 fps, x264 veryfast (B-frames): the camera pan turns every 5 s; a cut every 60 s."""
    path = tmp_path_factory.mktemp("pan") / "pan.mp4"
    return make_synthetic_video(path, minutes=1.5, width=320, height=180, fps=10, preset="veryfast", seed=3)


def _pan_label(t: float) -> str:
    """Where make_synthetic_video's camera moves at time t (its window slides by (cos a, sin a))."""
    angle = (int(t // 5) * 2.4) % (2 * np.pi)
    return direction_label(math.cos(angle), math.sin(angle))


def test_packet_table_covers_every_frame_with_inferred_picture_types(pan_video):
    table = read_packets(pan_video, probe(pan_video))
    assert len(table) == 900 and np.all(np.diff(table.time_seconds) > 0)
    assert table.is_key[0] and set(np.unique(table.picture)) == {I_FRAME, P_FRAME, B_FRAME}
    assert np.array_equal(table.picture == I_FRAME, table.is_key)
    assert sorted(table.decode_order) == list(range(900))
    gaps = table.reference_gaps()
    assert gaps.min() >= 1 and np.all(gaps[table.is_key] == 1)


@pytest.mark.parametrize("threads", [1, 2])
def test_one_pass_reads_every_packet_and_decodes_keyframes_and_a_few_p_frames(pan_video, threads):
    info = probe(pan_video)
    config = IngestConfig(decode_threads=threads, motion_sample_frames=3)
    ranges = scan_ranges(info.duration_seconds, config.bin_seconds, threads, min_range_seconds=30)
    assert len(ranges) == threads
    table, frames, spikes = sample_frames(pan_video, info, config, ranges, config.cut_size_ratio)
    whole = read_packets(pan_video, info)  # the ranges tile the stream: the same table as one demux pass
    for name in ("time_seconds", "size_bytes", "is_key", "picture", "pts"):
        assert np.array_equal(getattr(table, name), getattr(whole, name)), name
    decoded = [f.index for f in frames]
    assert decoded == sorted(set(decoded)) and set(table.keyframe_indices) <= set(decoded)
    assert not any(table.picture[i] == B_FRAME for i in decoded)
    chained = {i for _, chain in cut_chains(table, spikes) for i in chain}
    assert len(set(decoded) - chained) <= 4 * len(table.keyframe_indices) < len(table) / 4
    # Motion comes from the predicted frames; keyframes and the frame before each carry colours for the cut test.
    assert sum(f.motion is not None for f in frames) >= 2 * len(table.keyframe_indices)
    assert all(frames[k].histogram is not None for k in range(len(frames)) if table.is_key[frames[k].index])


def test_sampled_overview_reads_the_pan_direction(pan_video, tmp_path):
    ov = build_overview(pan_video, probe(pan_video), IngestConfig(), tmp_path / "ov")
    assert ov.motion_sampling == "after_keyframes" and ov.motion_source == "motion_vectors"
    tl = ov.timeline
    assert len(tl.bytes_per_frame) == tl.n_bins and min(tl.bytes_per_frame) > 0
    judged = [
        (tl.camera_direction(i), _pan_label(i * tl.bin_seconds))
        for i in range(tl.n_bins)
        if tl.sampled[i] and 0.6 < (i * tl.bin_seconds) % 5 < 4.4  # away from the turns
    ]
    assert len(judged) >= 10
    right = sum(found == truth for found, truth in judged)
    assert right >= 0.9 * len(judged), judged
    # Segments split where the pan turns, and each says which way the camera moves.
    moving = [s for s in ov.segments if s.camera != "still"]
    assert len(moving) >= 0.8 * len(ov.segments) and len(ov.segments) >= 6


def _stitched(shared_videos_dir, tmp_path, scenecut: bool):
    with open(shared_videos_dir / "MANIFEST.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    clips = [
        shared_videos_dir / r["file"] for r in rows if float(r["duration_s"]) >= 2.0 and "vp8" not in r["streams"]
    ]
    path = tmp_path / "stitched.mp4"
    return path, stitch_clips(clips, path, scenecut=scenecut)


def _cut_scores(path, truth, tmp_path):
    ov = build_overview(path, probe(path), IngestConfig(), tmp_path / "ov")
    found = ov.cuts_seconds
    hits = sum(any(abs(f - c) <= 1.0 for f in found) for c in truth)
    return ov, hits / len(truth), len(found) / len(truth)


def test_cuts_in_real_clips_stitched_without_scene_cut_keyframes(shared_videos_dir, tmp_path):
    """Keyframes only every 10 s: cuts fall inside groups of pictures and show only in packet sizes."""
    path, truth = _stitched(shared_videos_dir, tmp_path, scenecut=False)
    ov, recall, reported = _cut_scores(path, truth, tmp_path)
    assert ov.motion_sampling == "after_keyframes" and len(truth) >= 25
    assert recall >= 0.9 and reported <= 3.0, (recall, reported, ov.cuts_seconds, truth)
    for cut in ov.cuts_seconds:  # every cut has its thumbnail
        assert cut in ov.keyframe_seconds


@pytest.mark.slow
def test_cuts_in_real_clips_stitched_with_scene_cut_keyframes(shared_videos_dir, tmp_path):
    path, truth = _stitched(shared_videos_dir, tmp_path, scenecut=True)
    _, recall, reported = _cut_scores(path, truth, tmp_path)
    assert recall >= 0.9 and reported <= 3.0, (recall, reported)


def test_sampled_keyframes_still_place_every_cut(shared_videos_dir, tmp_path):
    """Decoding a keyframe only every 30 s: where the colours change across the skipped ones, they are decoded
    afterwards, so the cuts (the encoder's scene-cut keyframes here) are found where they are."""
    path, truth = _stitched(shared_videos_dir, tmp_path, scenecut=True)
    config = IngestConfig(keyframe_sample_seconds=30, keyframe_sample_min_seconds=0)
    found = build_overview(path, probe(path), config, tmp_path / "ov").cuts_seconds
    recall = sum(any(abs(f - c) <= 1.0 for f in found) for c in truth) / len(truth)
    assert recall >= 0.9 and len(found) <= 3 * len(truth), (recall, found, truth)


def test_a_pan_samples_its_keyframes(pan_video):
    """Across a pan the colours stay: the keyframes sampled out are never decoded, nor the frames after them."""
    info = probe(pan_video)
    every = IngestConfig(keyframe_sample_seconds=0)
    sampled = IngestConfig(keyframe_sample_seconds=20, keyframe_sample_min_seconds=0)
    ranges = scan_ranges(info.duration_seconds, every.bin_seconds, 1, min_range_seconds=30)
    table, all_frames, _ = sample_frames(pan_video, info, every, ranges, every.cut_size_ratio)
    _, some_frames, _ = sample_frames(pan_video, info, sampled, ranges, sampled.cut_size_ratio)
    keys = set(table.keyframe_indices)
    assert keys <= {f.index for f in all_frames}
    decoded_keys = sorted(keys & {f.index for f in some_frames})
    assert 0 < len(decoded_keys) <= len(keys) / 2 and len(some_frames) <= len(all_frames) / 2
    gaps = np.diff(table.time_seconds[decoded_keys])
    assert (gaps >= 20 - 1e-6).sum() >= len(gaps) / 2, gaps  # the rest were decoded where the colours changed


def test_a_size_spike_is_a_cut_only_where_the_colours_change_across_it():
    from foveate.memory.sampled import DecodedFrame, colours_change_across

    red, blue = np.zeros(48, np.float32), np.zeros(48, np.float32)
    red[[15, 16, 47]], blue[[3, 31, 40]] = 1.0, 1.0
    frames = [DecodedFrame(i, i / 10, None, h, None) for i, h in [(0, red), (30, red), (60, blue), (90, blue)]]
    frames.insert(2, DecodedFrame(45, 4.5, None, None, None))  # motion only: no colours, not a neighbour
    # 10: red to red (a pan); 50: red to blue; 60: decoded already; 95: nothing after it.
    assert colours_change_across([10, 50, 60, 95], frames, 0.125) == [50, 60, 95]
