"""The overview of a longer video from its packet table and the few frames decoded after each keyframe.

Cuts: keyframes whose colours differ from the last decoded frame before them (the encoder's
scene-cut keyframes) and predicted frames whose packet size spikes (cuts without a keyframe).
Motion: the measured bins, held over the unmeasured bins of the same shot, so each segment says
which way the camera and the objects move; ``MotionTimeline.sampled`` says which bins were measured.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from foveate.memory.config import IngestConfig
from foveate.memory.keyframes import jpeg_bytes
from foveate.memory.motion import MV_CODECS, MotionTimeline, TimelineBuilder
from foveate.memory.overview import Overview
from foveate.memory.packets import PacketTable
from foveate.memory.probe import VideoInfo
from foveate.memory.sampled import DecodedFrame, histogram_distance

logger = logging.getLogger(__name__)


def build_sampled_overview(
    path: str | Path,
    info: VideoInfo,
    config: IngestConfig,
    out_dir: Path,
    table: PacketTable,
    frames: list[DecodedFrame],
    spikes: list[int],
    progress: Callable[[float], None] | None = None,
) -> Overview:
    """The overview from ``table`` (every frame's packet), the ``frames`` :func:`sample_frames` decoded and
    the size-spike cuts inside groups; saved into ``out_dir`` (``overview.json`` + ``thumbs.jpgs``)."""
    source = "motion_vectors" if info.codec in MV_CODECS else "frame_diff"
    builder = TimelineBuilder(config.bin_seconds)
    for f in frames:
        if f.motion is not None:
            builder.add(f.motion)
    decoded = {f.index for f in frames}
    cut_indices = sorted(set(_keyframe_cuts(table, frames, config, info.fps)) | {i for i in spikes if i in decoded})
    cuts_seconds: list[float] = []
    for i in cut_indices:
        t = round(float(table.time_seconds[i]), 3)
        if t > 0 and (not cuts_seconds or t - cuts_seconds[-1] >= config.min_cut_gap_seconds):
            cuts_seconds.append(t)
    keyframe_seconds, jpegs = _thumbnails(frames, set(cut_indices), config)
    timeline = _sampled_timeline(builder, table, info, config, source, cuts_seconds)
    ov = Overview.assemble(info, config, timeline, cuts_seconds, keyframe_seconds, "after_keyframes", jpegs)
    ov.save(out_dir)
    logger.debug(
        "%s: %d of %d frames decoded, %d cuts, %d segments",
        path,
        len(frames),
        len(table),
        len(cuts_seconds),
        len(ov.segments),
    )
    if progress is not None:
        progress(1.0)
    return ov


def _keyframe_cuts(table: PacketTable, frames: list[DecodedFrame], config: IngestConfig, fps: float) -> list[int]:
    """Keyframes the encoder placed at a scene cut: their colours differ from the last decoded frame before them.

    The test is on colour histograms, which a panning camera leaves nearly unchanged. A keyframe on
    the encoder's schedule (the most common keyframe interval) is not a cut unless the frame it is
    compared with is less than a second back: with more between them, the change may have happened
    anywhere in the group, and a cut placed at the keyframe would be seconds late.
    """
    key_idx = table.keyframe_indices
    intervals = np.round(np.diff(table.time_seconds[key_idx]) * fps).astype(np.int64)
    values, counts = np.unique(intervals, return_counts=True)
    schedule = int(values[np.argmax(counts)]) if len(values) else -1
    cuts, previous = [], None
    for f in (f for f in frames if f.histogram is not None):
        if table.is_key[f.index] and previous is not None:
            k = int(np.searchsorted(key_idx, f.index))
            on_schedule = k > 0 and intervals[k - 1] == schedule
            if on_schedule and f.time_seconds - previous.time_seconds > 1.0:
                previous = f
                continue
            if histogram_distance(previous.histogram, f.histogram) >= config.cut_histogram_distance:
                cuts.append(f.index)
        previous = f
    return cuts


def _thumbnails(frames: list[DecodedFrame], cuts: set[int], config: IngestConfig) -> tuple[list[float], list[bytes]]:
    """Thumbnails (JPEG files) for every cut and for keyframes at least ``thumbnail_min_gap_seconds`` apart,
    and their times."""
    times: list[float] = []
    jpegs: list[bytes] = []
    for f in frames:
        if f.thumbnail is None:
            continue
        since = f.time_seconds - times[-1] if times else math.inf
        if f.index in cuts or since >= config.thumbnail_min_gap_seconds:
            jpegs.append(jpeg_bytes(f.thumbnail))
            times.append(round(f.time_seconds, 3))
    return times, jpegs


def _sampled_timeline(
    builder: TimelineBuilder,
    table: PacketTable,
    info: VideoInfo,
    config: IngestConfig,
    source: str,
    cuts_seconds: list[float],
) -> MotionTimeline:
    """The measured bins, held over the unmeasured ones of the same shot; sizes and intra share for every bin."""
    timeline = builder.build(info.duration_seconds, source)
    n, b = timeline.n_bins, config.bin_seconds
    bins = np.clip((table.time_seconds / b).astype(np.int64), 0, n - 1)
    count = np.bincount(bins, minlength=n)
    size = np.bincount(bins, weights=table.size_bytes, minlength=n)
    key_sizes = table.size_bytes[table.is_key]
    intra = np.where(table.is_key, 1.0, np.minimum(1.0, table.size_bytes / max(1.0, float(np.median(key_sizes)))))
    intra_bins = np.zeros(n)
    np.maximum.at(intra_bins, bins, intra)
    measured = builder.measured(n)
    fields = ("magnitude", "camera_dx", "camera_dy", "local_fraction", "local_dx", "local_dy")
    held = {name: np.asarray(getattr(timeline, name)) for name in fields}
    src = np.flatnonzero(measured)
    if len(src):
        shot = np.searchsorted(np.asarray(cuts_seconds), np.arange(n) * b, side="right")
        pos = np.clip(np.searchsorted(src, np.arange(n)), 0, len(src) - 1)
        prev = src[np.clip(pos - 1, 0, None)]
        nxt = src[pos]
        nearest = np.where(np.abs(np.arange(n) - prev) <= np.abs(nxt - np.arange(n)), prev, nxt)
        other = np.where(nearest == prev, nxt, prev)
        nearest = np.where(shot[nearest] == shot, nearest, other)
        fill = ~measured & (shot[nearest] == shot)
        for name in fields:
            held[name] = np.where(fill, held[name][nearest], held[name])
    r = lambda a: np.round(np.asarray(a, np.float64), 6).tolist()  # noqa: E731
    return timeline.model_copy(
        update={
            **{name: r(values) for name, values in held.items()},
            "intra_fraction": r(intra_bins),
            "bytes_per_frame": r(np.divide(size, count, out=np.zeros(n), where=count > 0)),
            "sampled": [bool(m) for m in measured],
        }
    )
