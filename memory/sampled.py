"""Decoding only where it pays, in the same pass that reads every packet.

One demux pass records every packet (:class:`foveate.memory.packets.PacketColumns`: size, key
flag, picture type) and hands the decoder only each keyframe (its thumbnail and colours, for the
cut test) and the ``motion_sample_frames`` I/P packets that follow it (their motion vectors: which
way the camera and the objects move). Everything else is demuxed and dropped, so the cost is that
of reading the file and decoding the keyframes plus a few frames each, not of every frame.

Then, for each predicted frame whose packet size marks a cut inside a group of pictures, a
second, seeking pass decodes the group's I/P packets from its keyframe up to the cut frame (its
thumbnail). Such cuts are few, so this pass is short.

With ``decode_threads`` > 1, the video is split into that many time ranges, each read by its own
thread on its own container (PyAV releases the GIL while demuxing and decoding); a range runs
from the first keyframe at or after its start to the first keyframe at or after its end, so the
ranges tile the stream exactly.
"""

from __future__ import annotations

import gc
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from foveate.memory.config import IngestConfig
from foveate.memory.errors import CorruptVideoError
from foveate.memory.motion import (
    MV_CODECS,
    FrameMotion,
    luma_plane,
    luma_signature,
    motion_from_luma,
    motion_from_vectors,
    scale_motion,
)
from foveate.memory.packets import B_FRAME, PacketColumns, PacketTable
from foveate.memory.probe import VideoInfo, ffmpeg_reason, open_video
from foveate.memory.threads import Cancelled, collecting_cycles, map_stoppable

logger = logging.getLogger(__name__)


@dataclass
class DecodedFrame:
    """What the sampling pass kept of one decoded frame."""

    index: int  # presentation index into the packet table (-1 until the table is built)
    time_seconds: float
    signature: np.ndarray | None  # (h, w) float32 luma signature, for motion without vectors
    histogram: np.ndarray | None  # (48,) float32 Y/U/V histograms, for the cut test (keyframes, frames before them)
    motion: FrameMotion | None
    thumbnail: object | None = None  # PIL image, for keyframes and cut frames


def colour_histogram(frame: av.VideoFrame, bins: int = 16) -> np.ndarray:
    """``(3 * bins,) float32``: histograms of the Y, U and V planes (subsampled), each normalised to sum 1.

    A camera that pans over one scene keeps its colours; a cut to another scene changes them, so the
    distance between two frames' histograms marks a cut even when the frames are seconds apart.
    """
    fmt = frame.format.name
    # About 10,000 luma samples are plenty for 16 bins and cost the same at any resolution.
    step = max(1, math.ceil((frame.width * frame.height / 10_000) ** 0.5))
    if fmt in ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"):
        planes = []
        for k, plane in enumerate(frame.planes[:3]):
            h = frame.height if k == 0 or "444" in fmt or "422" in fmt else (frame.height + 1) // 2
            w = plane.width
            buf = np.frombuffer(plane, np.uint8)[: plane.line_size * h].reshape(h, plane.line_size)[:, :w]
            planes.append(buf[::step, ::step])
    else:
        planes = list(frame.to_ndarray(format="yuv444p")[:, ::step, ::step])
    out = []
    for values in planes:
        counts = np.bincount((values >> (8 - int(np.log2(bins)))).ravel(), minlength=bins)
        out.append(counts / max(1, counts.sum()))
    return np.concatenate(out).astype(np.float32)


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Half the L1 distance per plane, averaged over the planes: 0 (same colours) to 1 (disjoint)."""
    return float(np.abs(a - b).sum()) / 2.0 / 3.0


class _RangeReader:
    """One thread's part of the single pass: demux a time range, decode the keyframes and the frames after them."""

    def __init__(self, path: str | Path, info: VideoInfo, config: IngestConfig, start: float, end: float) -> None:
        self.path, self.info, self.config = path, info, config
        self.start, self.end = start, end
        self.vectors = info.codec in MV_CODECS
        self.columns = PacketColumns()
        self.frames: list[DecodedFrame] = []
        self.pts: list[int] = []  # the stream timestamp of each of self.frames
        self._previous: DecodedFrame | None = None  # the last I/P frame handled
        self._pending: tuple[DecodedFrame, av.VideoFrame] | None = None  # last predicted frame, for its colours
        self._scaler = VideoReformatter()
        long_video = info.duration_seconds >= config.keyframe_sample_min_seconds
        gap = max(config.keyframe_sample_seconds, info.duration_seconds / config.keyframe_sample_max)
        self.keyframe_gap = gap if long_video and config.keyframe_sample_seconds > 0 else 0.0
        self._last_key = -math.inf  # the time of the last keyframe decoded

    def run(self, progress: Callable[[float], None], stop: threading.Event) -> _RangeReader:
        window = self.config.motion_sample_frames
        with open_video(self.path) as container:
            stream = container.streams.video[0]
            _configure(stream, self.config, self.vectors)
            ctx = stream.codec_context
            base = float(stream.time_base)
            started = self.start <= 0
            if not started:
                container.seek(int((self.start + self.info.start_seconds) / base), stream=stream)
            remaining = 0
            add, offset = self.columns.add, self.info.start_seconds
            try:
                for packet in container.demux(stream):
                    if stop.is_set():
                        raise Cancelled
                    pts, size = packet.pts, packet.size
                    if size == 0 or pts is None:
                        continue  # the demuxer's flush packet; packets without a timestamp cannot be placed
                    t = pts * base - offset
                    key = packet.is_keyframe
                    if key and t >= self.end:
                        break
                    if not started:
                        if not (key and t >= self.start):
                            continue  # the range before this one reads these
                        started = True
                    reordered = add(t, pts, size, key)
                    if key:
                        if t - self._last_key < self.keyframe_gap:
                            remaining = 0  # sampled out: sample_frames decodes it if the colours change across it
                            continue
                        self._last_key, remaining = t, window
                    elif remaining > 0 and not reordered:
                        remaining -= 1
                    else:
                        continue
                    for frame in ctx.decode(packet):
                        self._handle(frame, base)
                    if len(self.columns) % 512 == 0:
                        progress(t)
                for frame in ctx.decode(None):  # drain: frames the decoder held back for reordering
                    self._handle(frame, base)
            except av.FFmpegError as exc:
                if self.start <= 0 and not self.frames:
                    what = "packet could be read" if not self.columns else "frame could be decoded"
                    raise CorruptVideoError(self.path, f"no {what} ({ffmpeg_reason(exc)})") from None
                logger.warning(
                    "%s: reading stopped at %.2fs (%s); using what was read",
                    self.path,
                    max(self.start, self.columns.latest),
                    ffmpeg_reason(exc),
                )
        self._settle_pending()
        return self

    def _handle(self, frame: av.VideoFrame, base: float) -> None:
        if frame.pts is None:
            return
        if len(self.frames) % 16 == 15:
            gc.collect()  # frames whose vectors were read sit in cycles: see memory.threads.collecting_cycles
        t = float(frame.pts * base - self.info.start_seconds)
        is_key = bool(frame.key_frame)
        previous = self._previous
        # I/P frames come out in presentation order, and within a window they are consecutive.
        gap = max(1, round((t - previous.time_seconds) * self.info.fps)) if previous is not None else 1
        decoded = _decode_frame(frame, t, is_key, previous, gap, self.config, self.vectors)
        if is_key:
            self._settle_pending()
            decoded.histogram = colour_histogram(frame)
            decoded.thumbnail = _thumbnail(frame, self.config, self.info, self._scaler)
        else:
            self._pending = (decoded, frame)
        self.frames.append(decoded)
        self.pts.append(int(frame.pts))
        self._previous = decoded

    def _settle_pending(self) -> None:
        """The last decoded frame before a keyframe is what the cut test compares the keyframe with."""
        if self._pending is not None:
            decoded, frame = self._pending
            decoded.histogram = colour_histogram(frame)
            self._pending = None


def _configure(stream, config: IngestConfig, vectors: bool) -> None:
    # Slice threading (PyAV's default): frame threading exports different vectors on some
    # frames. Cores are used by reading time ranges in parallel instead.
    stream.thread_type = "SLICE"
    options = {"skip_loop_filter": "all"} if config.skip_loop_filter else {}
    if vectors:
        options["flags2"] = "+export_mvs"
    stream.codec_context.options = options
    stream.codec_context.skip_frame = "NONREF"  # B-frames are never sent; skip any non-reference frame anyway


def _decode_frame(
    frame: av.VideoFrame,
    t: float,
    is_key: bool,
    previous: DecodedFrame | None,
    gap: int,
    config: IngestConfig,
    vectors: bool,
) -> DecodedFrame:
    """A frame's motion: from its vectors (they span ``gap`` frames back to its reference), else from
    the luma difference to ``previous`` when that is at most 4 frames back."""
    signature = None if vectors else luma_signature(luma_plane(frame), config.fallback_side)
    motion = None
    if vectors and not is_key:
        mvs = frame.side_data.get("MOTION_VECTORS")
        arr = mvs.to_ndarray() if mvs is not None and len(mvs) else None
        if arr is not None:
            motion = motion_from_vectors(arr, frame.width, frame.height, config.moving_threshold * gap, t)
            scale_motion(motion, 1.0 / gap)
    elif not vectors and previous is not None and previous.signature is not None and not is_key and gap <= 4:
        motion = motion_from_luma(previous.signature, signature, config.moving_threshold * gap, t)
        scale_motion(motion, 1.0 / gap)
    return DecodedFrame(-1, t, signature, None, motion)


def _thumbnail(frame: av.VideoFrame, config: IngestConfig, info: VideoInfo, reformatter: VideoReformatter):
    """A small RGB image of ``frame``; ``reformatter`` keeps its scaler between calls (making one costs more
    than scaling a small frame)."""
    side = config.thumbnail_max_side
    scale = min(1.0, side / max(frame.width, frame.height))
    w, h = max(2, int(round(frame.width * scale / 2)) * 2), max(2, int(round(frame.height * scale / 2)) * 2)
    # A copy: the image PyAV makes shares the frame's buffer, which would pin the decoder's frame pool.
    small = reformatter.reformat(frame, width=w, height=h, format="rgb24", interpolation="FAST_BILINEAR")
    img = small.to_image().copy()
    if info.rotation_degrees:
        img = img.rotate(info.rotation_degrees, expand=True)  # PIL rotates counter-clockwise
    return img


def cut_chains(table: PacketTable, cut_indices: list[int]) -> list[tuple[int, list[int]]]:
    """Per cut frame inside a group: (the group's keyframe, every I/P frame from it up to the cut, in decoding
    order). B-frames are left out: no I/P frame is predicted from one."""
    keys = table.keyframe_indices
    if len(keys) == 0:
        return []
    position = np.empty(len(table), np.int64)  # decoding position of each presentation index
    position[table.decode_order] = np.arange(len(table))
    by_position = table.decode_order
    key_positions = np.sort(position[keys])
    anchors = np.flatnonzero(table.picture[by_position] != B_FRAME)
    chains = []
    for cut in cut_indices:
        p_cut = position[cut]
        start = key_positions[np.searchsorted(key_positions, p_cut, side="right") - 1]
        chain = anchors[(anchors >= start) & (anchors <= p_cut)]
        chains.append((int(by_position[start]), [int(i) for i in by_position[chain]]))
    return chains


def _decode_chains(
    path: str | Path,
    info: VideoInfo,
    table: PacketTable,
    config: IngestConfig,
    cut_indices: list[int],
    all_cuts: set[int] | None = None,
) -> list[DecodedFrame]:
    """The cut frames inside groups, each with its thumbnail and colours: seek to the group's keyframe and
    decode the chain of I/P packets up to the cut. A frame of ``all_cuts`` (default: ``cut_indices``) met on
    the way gets its thumbnail and colours too."""
    vectors = info.codec in MV_CODECS
    pts_index = {int(p): i for i, p in enumerate(table.pts)}
    cuts = set(cut_indices) if all_cuts is None else all_cuts
    out: list[DecodedFrame] = []
    settings = (config, info, vectors, VideoReformatter())
    with open_video(path) as container:
        stream = container.streams.video[0]
        _configure(stream, config, vectors)
        ctx = stream.codec_context
        for key, chain in cut_chains(table, cut_indices):
            wanted, remaining = set(chain), len(chain)
            decoded: list[av.VideoFrame] = []
            chain_out: list[DecodedFrame] = []
            try:
                container.seek(int(table.pts[key]), stream=stream)
                ctx.flush_buffers()
                for packet in container.demux(stream):
                    index = pts_index.get(packet.pts) if packet.pts is not None else None
                    if index is None or index not in wanted:
                        continue
                    decoded.extend(ctx.decode(packet))
                    remaining -= 1
                    if remaining == 0:
                        break
                    chain_out.extend(_chain_frames(decoded, chain_out, table, pts_index, cuts, *settings))
                    decoded.clear()
                decoded.extend(ctx.decode(None))
                chain_out.extend(_chain_frames(decoded, chain_out, table, pts_index, cuts, *settings))
            except av.FFmpegError as exc:
                reason = ffmpeg_reason(exc)
                logger.warning("%s: a cut after %.2fs was not decoded (%s)", path, table.time_seconds[key], reason)
            decoded.clear()
            out.extend(chain_out)
            gc.collect()  # see memory.threads.collecting_cycles
    return out


def _chain_frames(
    frames: list[av.VideoFrame],
    before: list[DecodedFrame],
    table: PacketTable,
    pts_index: dict[int, int],
    cuts: set[int],
    config: IngestConfig,
    info: VideoInfo,
    vectors: bool,
    scaler: VideoReformatter,
) -> list[DecodedFrame]:
    """What a cut chain's decoded ``frames`` give: motion, and for the cut frames their colours and thumbnail."""
    out: list[DecodedFrame] = []
    previous = before[-1] if before else None
    for frame in frames:
        index = pts_index.get(frame.pts) if frame.pts is not None else None
        if index is None:
            continue
        gap = max(1, index - previous.index) if previous is not None else 1
        t = float(table.time_seconds[index])
        decoded = _decode_frame(frame, t, bool(table.is_key[index]), previous, gap, config, vectors)
        decoded.index = index
        if index in cuts:
            decoded.histogram = colour_histogram(frame)
            decoded.thumbnail = _thumbnail(frame, config, info, scaler)
        out.append(decoded)
        previous = decoded
    return out


def sample_frames(
    path: str | Path,
    info: VideoInfo,
    config: IngestConfig,
    ranges: list[tuple[float, float]],
    cut_ratio: float,
    progress: Callable[[float], None] | None = None,
) -> tuple[PacketTable, list[DecodedFrame], list[int]]:
    """The packet table, the decoded frames (time order) and the size-spike cuts inside groups.

    Each of ``ranges`` is read by one thread (see the module doc); then the groups with a size-spike
    cut (:func:`foveate.memory.packets.size_spike_cuts` at ``cut_ratio``) are decoded up to the cut.
    """
    from foveate.memory.packets import size_spike_cuts

    reached = [r[0] for r in ranges]
    total = max(1e-9, info.duration_seconds)

    def tick(k: int) -> Callable[[float], None]:
        def report(t: float) -> None:
            reached[k] = t
            if progress is not None:
                done = sum(min(t, end) - start for t, (start, end) in zip(reached, ranges))
                progress(min(0.95, 0.95 * done / total))

        return report

    def run(k: int, stop: threading.Event) -> _RangeReader:
        start, end = ranges[k]
        return _RangeReader(path, info, config, start, end).run(tick(k), stop)

    with collecting_cycles():
        readers = map_stoppable(run, list(range(len(ranges))), "overview-read")
    columns = PacketColumns()
    for reader in readers:
        columns.extend(reader.columns)
    if not columns:
        raise CorruptVideoError(path, "the video stream holds no packets")
    table = columns.table()
    pts_index = {int(p): i for i, p in enumerate(table.pts)}
    frames: dict[int, DecodedFrame] = {}
    for reader in readers:
        for f, pts in zip(reader.frames, reader.pts):
            index = pts_index.get(pts)
            if index is not None and index not in frames:
                f.index = index
                frames[index] = f
    if not frames:
        raise CorruptVideoError(path, "no frame could be decoded")
    in_order = [frames[i] for i in sorted(frames)]
    spikes = colours_change_across(size_spike_cuts(table, cut_ratio), in_order, config.cut_histogram_distance / 2)
    skipped = colour_change_keyframes(table, in_order, config.cut_histogram_distance)
    todo = sorted({*spikes, *skipped})
    if todo:  # each reading thread takes every n-th cut: at low resolutions decoding uses one core
        n = max(1, min(config.decode_threads, len(todo)))
        with collecting_cycles():
            parts = map_stoppable(
                lambda part, stop: _decode_chains(path, info, table, config, part, set(todo)),
                [todo[k::n] for k in range(n)],
                "overview-cuts",
            )
        for f in (f for part in parts for f in part):
            if f.index in spikes or f.index in skipped or f.index not in frames:
                frames[f.index] = f
    return table, [frames[i] for i in sorted(frames)], spikes


def colours_change_across(cuts: list[int], frames: list[DecodedFrame], distance: float) -> list[int]:
    """The ``cuts`` (presentation indices) across which the colours change by at least ``distance``, between the
    decoded frames with colours just before and just after: a size spike where they stay (a fast pan, a flash of
    detail) is no cut, and is not decoded. A cut with no such frame on one side is kept."""
    coloured = [f for f in frames if f.histogram is not None]
    at = np.asarray([f.index for f in coloured])
    kept = []
    for cut in cuts:
        k = int(np.searchsorted(at, cut))
        if k < len(at) and at[k] == cut:
            kept.append(cut)  # decoded already, with its colours
        elif k in (0, len(at)) or histogram_distance(coloured[k - 1].histogram, coloured[k].histogram) >= distance:
            kept.append(cut)
    return kept


def colour_change_keyframes(table: PacketTable, frames: list[DecodedFrame], distance: float) -> list[int]:
    """The keyframes that sampling left undecoded between two decoded frames whose colours differ by at least
    ``distance``: one of them may be a scene cut, and decoding them (colours and thumbnail) places it."""
    keys = table.keyframe_indices
    out: list[int] = []
    previous = None
    for f in frames:
        if f.histogram is None:
            continue
        if previous is not None and histogram_distance(previous.histogram, f.histogram) >= distance:
            # Every decoded keyframe has colours, so the keyframes between these two were all sampled out.
            out.extend(int(k) for k in keys[(keys > previous.index) & (keys < f.index)])
        previous = f
    return out
