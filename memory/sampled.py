"""Decoding only where it pays: each keyframe and a short window of frames after it.

The packet table (:mod:`foveate.memory.packets`) covers every frame at demux speed. This pass
decodes, per group of pictures, the keyframe (its thumbnail, and a luma signature to check it
for a scene cut) and the ``motion_sample_frames`` packets that follow it in decoding order
(their motion vectors: which way the camera and the objects move), plus, for a predicted frame
whose packet size marks a cut inside a group, the packets from the group's keyframe up to it
(its thumbnail). Nothing else is decoded, so the cost is that of decoding the keyframes plus a
few frames each, not of every frame.

The groups are split into ``threads`` contiguous chunks, each decoded by its own thread on its
own container (PyAV releases the GIL while decoding); results are merged in time order.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

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
from foveate.memory.packets import B_FRAME, PacketTable
from foveate.memory.probe import VideoInfo, ffmpeg_reason, open_video
from foveate.memory.threads import Cancelled, collecting_cycles, map_stoppable

logger = logging.getLogger(__name__)


@dataclass
class DecodedFrame:
    """What the sampling pass kept of one decoded frame."""

    index: int  # presentation index into the packet table
    time_seconds: float
    signature: np.ndarray | None  # (h, w) float32 luma signature, for motion without vectors
    histogram: np.ndarray | None  # (48,) float32 Y/U/V histograms for the cut test (see _Plan.compared)
    motion: FrameMotion | None
    thumbnail: object | None = None  # PIL image, for keyframes and cut frames


def colour_histogram(frame: av.VideoFrame, bins: int = 16) -> np.ndarray:
    """``(3 * bins,) float32``: histograms of the Y, U and V planes (subsampled), each normalised to sum 1.

    A camera that pans over one scene keeps its colours; a cut to another scene changes them, so the
    distance between two frames' histograms marks a cut even when the frames are seconds apart.
    """
    fmt = frame.format.name
    if fmt in ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"):
        planes = []
        for k, plane in enumerate(frame.planes[:3]):
            h = frame.height if k == 0 or "444" in fmt or "422" in fmt else (frame.height + 1) // 2
            w = plane.width
            buf = np.frombuffer(plane, np.uint8)[: plane.line_size * h].reshape(h, plane.line_size)[:, :w]
            planes.append(buf[::4, ::4])
    else:
        planes = list(np.moveaxis(frame.to_ndarray(format="yuv444p")[:, ::4, ::4], 0, 0))
    out = []
    for values in planes:
        counts = np.bincount((values.ravel() >> (8 - int(np.log2(bins)))).astype(np.int64), minlength=bins)
        out.append(counts / max(1, counts.sum()))
    return np.concatenate(out).astype(np.float32)


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Half the L1 distance per plane, averaged over the planes: 0 (same colours) to 1 (disjoint)."""
    return float(np.abs(a - b).sum()) / 2.0 / 3.0


@dataclass
class _Plan:
    """The packets one worker decodes, by presentation index, group by group."""

    groups: list[tuple[int, set[int]]]  # (keyframe index, the group's planned indices), in time order
    indices: set[int] = field(default_factory=set)
    # Frames whose colours the cut test compares: keyframes and the last decoded frame of each group.
    compared: set[int] = field(default_factory=set)


def plan_decoding(
    table: PacketTable, window: int, cut_indices: list[int], threads: int, budget_frames: int = 0
) -> list[_Plan]:
    """Split the groups of pictures into ``threads`` chunks; each plan lists the frames to decode.

    Per keyframe: the keyframe and the next ``window`` I/P packets in decoding order. Per cut index
    inside a group: every I/P packet from the group's keyframe up to the cut frame. Then, while
    ``budget_frames`` lasts, groups are decoded further where their P-frames are largest (bits are
    spent where things move): each step extends the group whose next undecoded P-frame is the
    largest by one packet. B-frames are never decoded: no I/P frame is predicted from one, and
    P-frame vectors say as much about motion.
    """
    keys = table.keyframe_indices
    if len(keys) == 0:
        return []
    position = np.empty(len(table), np.int64)  # decoding position of each presentation index
    position[table.decode_order] = np.arange(len(table))
    by_position = table.decode_order  # presentation index at each decoding position
    key_positions = np.sort(position[keys])
    anchors = np.flatnonzero(table.picture[by_position] != B_FRAME)  # decoding positions of I/P packets
    wanted: dict[int, set[int]] = {int(p): set() for p in key_positions}
    for p in key_positions:
        k = int(np.searchsorted(anchors, p))
        wanted[int(p)].update(int(i) for i in by_position[anchors[k : k + 1 + window]])
    for cut in cut_indices:
        p_cut = position[cut]
        start = key_positions[np.searchsorted(key_positions, p_cut, side="right") - 1]
        chain = anchors[(anchors >= start) & (anchors <= p_cut)]
        wanted[int(start)].update(int(i) for i in by_position[chain])
    if budget_frames > 0:
        _extend_busy_groups(table, key_positions, anchors, by_position, wanted, window, budget_frames)
    chunks = np.array_split(key_positions, max(1, min(threads, len(key_positions))))
    return [
        _Plan(
            groups=[(int(by_position[p]), wanted[int(p)]) for p in chunk],
            indices=set().union(*(wanted[int(p)] for p in chunk)),
            compared={int(by_position[p]) for p in chunk} | {max(wanted[int(p)]) for p in chunk},
        )
        for chunk in chunks
        if len(chunk)
    ]


def _extend_busy_groups(
    table: PacketTable,
    key_positions: np.ndarray,
    anchors: np.ndarray,
    by_position: np.ndarray,
    wanted: dict[int, set[int]],
    window: int,
    budget_frames: int,
) -> None:
    """Spend ``budget_frames`` extending groups' decoded chains where the P-frame sizes are largest."""
    import heapq

    ends = np.append(key_positions[1:], len(table))
    heap, depth = [], {}
    for start, end in zip(key_positions, ends):
        k = int(np.searchsorted(anchors, start)) + 1 + window  # the first anchor after the window
        if k < len(anchors) and anchors[k] < end:
            depth[int(start)] = (k, int(end))
            heapq.heappush(heap, (-int(table.size_bytes[by_position[anchors[k]]]), int(start)))
    while heap and budget_frames > 0:
        _, start = heapq.heappop(heap)
        k, end = depth[start]
        wanted[start].add(int(by_position[anchors[k]]))
        budget_frames -= 1
        k += 1
        if k < len(anchors) and anchors[k] < end:
            depth[start] = (k, end)
            # The chain must be decoded in order, so a group's next packet weighs what lies further on:
            # the largest P-frame it would lead to, not just the next one.
            ahead = by_position[anchors[k : np.searchsorted(anchors, end)]]
            heapq.heappush(heap, (-int(table.size_bytes[ahead].max()), start))


class _Sampler:
    """Decodes one plan: seek to its first keyframe, demux on, decode the planned packets only."""

    def __init__(self, path: str | Path, info: VideoInfo, table: PacketTable, config: IngestConfig) -> None:
        self.path, self.info, self.table, self.config = path, info, table, config
        self.vectors = info.codec in MV_CODECS
        self.gaps = table.reference_gaps()

    def run(
        self, plan: _Plan, keep: set[int], progress: Callable[[int], None] | None, stop: threading.Event
    ) -> list[DecodedFrame]:
        """Per group: seek to its keyframe, decode its planned packets, drain the decoder. Seeking (an index
        lookup) skips the packets between groups unread, so the stream is demuxed once, by read_packets."""
        out: list[DecodedFrame] = []
        self.compared = plan.compared
        pts_index = self._pts_index()
        with open_video(self.path) as container:
            stream = container.streams.video[0]
            self._configure(stream)
            ctx = stream.codec_context
            previous: DecodedFrame | None = None
            try:
                for g, (key, planned) in enumerate(plan.groups):
                    if g % 2 == 1:
                        gc.collect()  # see memory.threads.collecting_cycles
                    container.seek(int(self.table.pts[key]), stream=stream)
                    remaining = len(planned)
                    for packet in container.demux(stream):
                        if stop.is_set():
                            raise Cancelled
                        index = pts_index.get(packet.pts) if packet.pts is not None else None
                        if index is None or index not in planned:
                            continue
                        for frame in ctx.decode(packet):
                            previous = self._frame(frame, previous, keep, pts_index, out)
                        remaining -= 1
                        if remaining == 0:
                            break
                    for frame in ctx.decode(None):  # drain: frames the decoder held back for reordering
                        previous = self._frame(frame, previous, keep, pts_index, out)
                    if progress is not None:
                        progress(len(planned))
            except av.FFmpegError as exc:
                if not out:
                    raise CorruptVideoError(self.path, f"no frame could be decoded ({ffmpeg_reason(exc)})") from None
                logger.warning(
                    "%s: decoding stopped near %.2fs (%s); using what was decoded",
                    self.path,
                    out[-1].time_seconds,
                    ffmpeg_reason(exc),
                )
        return out

    def _pts_index(self) -> dict[int, int]:
        return {int(p): i for i, p in enumerate(self.table.pts)}

    def _configure(self, stream) -> None:
        # Slice threading (PyAV's default): frame threading exports different vectors on some
        # frames. Cores are used by decoding chunks of groups in parallel instead.
        stream.thread_type = "SLICE"
        options = {"skip_loop_filter": "all"} if self.config.skip_loop_filter else {}
        if self.vectors:
            options["flags2"] = "+export_mvs"
        stream.codec_context.options = options
        stream.codec_context.skip_frame = "NONREF"  # B-frames are not planned; skip any that slip in

    def _frame(
        self,
        frame: av.VideoFrame,
        previous: DecodedFrame | None,
        keep: set[int],
        pts_index: dict[int, int],
        out: list[DecodedFrame],
    ) -> DecodedFrame | None:
        index = pts_index.get(frame.pts) if frame.pts is not None else None
        if index is None:
            return previous
        t = float(self.table.time_seconds[index])
        is_key = bool(self.table.is_key[index])
        signature = None if self.vectors else luma_signature(luma_plane(frame), self.config.fallback_side)
        motion = None
        if self.vectors and not is_key:
            mvs = frame.side_data.get("MOTION_VECTORS")
            arr = mvs.to_ndarray() if mvs is not None and len(mvs) else None
            if arr is not None:
                gap = int(self.gaps[index])
                motion = motion_from_vectors(arr, frame.width, frame.height, self.config.moving_threshold * gap, t)
                scale_motion(motion, 1.0 / gap)
        elif not self.vectors and previous is not None and previous.signature is not None and not is_key:
            gap = index - previous.index
            if 0 < gap <= 4:  # neighbouring I/P frames of one window
                motion = motion_from_luma(previous.signature, signature, self.config.moving_threshold * gap, t)
                scale_motion(motion, 1.0 / gap)
        histogram = colour_histogram(frame) if index in self.compared or index in keep else None
        decoded = DecodedFrame(index, t, signature, histogram, motion)
        if is_key or index in keep:
            decoded.thumbnail = self._thumbnail(frame)
        out.append(decoded)
        return decoded

    def _thumbnail(self, frame: av.VideoFrame):
        side = self.config.thumbnail_max_side
        scale = min(1.0, side / max(frame.width, frame.height))
        w, h = max(2, int(round(frame.width * scale / 2)) * 2), max(2, int(round(frame.height * scale / 2)) * 2)
        # A copy: the image PyAV makes shares the frame's buffer, which would pin the decoder's frame pool.
        img = frame.reformat(width=w, height=h, format="rgb24", interpolation="FAST_BILINEAR").to_image().copy()
        if self.info.rotation_degrees:
            img = img.rotate(self.info.rotation_degrees, expand=True)  # PIL rotates counter-clockwise
        return img


def sample_frames(
    path: str | Path,
    info: VideoInfo,
    table: PacketTable,
    config: IngestConfig,
    cut_indices: list[int],
    progress: Callable[[float], None] | None = None,
) -> list[DecodedFrame]:
    """Decode the planned frames (see :func:`plan_decoding`) in ``config.decode_threads`` threads; time order."""
    budget = int(config.motion_budget_share * len(table))
    plans = plan_decoding(table, config.motion_sample_frames, cut_indices, config.decode_threads, budget)
    total = max(1, sum(len(p.indices) for p in plans))
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(min(1.0, done[0] / total))

    def run(plan: _Plan, stop: threading.Event) -> list[DecodedFrame]:
        return _Sampler(path, info, table, config).run(plan, set(cut_indices), tick, stop)

    with collecting_cycles():
        parts = map_stoppable(run, plans, "overview-sample")
    frames = sorted((f for part in parts for f in part), key=lambda f: f.index)
    unique: list[DecodedFrame] = []
    for f in frames:  # a frame decoded by two threads (a seek landing early) counts once
        if not unique or unique[-1].index != f.index:
            unique.append(f)
    return unique
