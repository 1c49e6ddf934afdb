"""The compressed stream at demux speed: every frame's packet size, key flag and picture type.

Nothing is decoded here. Demuxing an hour of 720p reads every packet header and payload in
well under a second, and the sizes say a lot: bits are spent where the picture changes, an
intra-coded frame costs several times a predicted one, and a predicted frame at a scene cut
(when the encoder placed no keyframe there) is nearly as large as a keyframe.

Picture types are inferred from the container: keyframes are I; a packet whose presentation
time is earlier than one already demuxed was reordered, so it is a B-frame; the rest are P.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from foveate.memory.errors import CorruptVideoError
from foveate.memory.probe import VideoInfo, ffmpeg_reason, open_video

logger = logging.getLogger(__name__)

I_FRAME, P_FRAME, B_FRAME = 0, 1, 2


@dataclass(frozen=True)
class PacketTable:
    """Per frame, in presentation order. All arrays have length N.

    - ``time_seconds (N,) float64``: presentation time from the first frame.
    - ``size_bytes (N,) int64``: compressed size of the frame's packet.
    - ``is_key (N,) bool``: the packet is a keyframe (decoding can start there).
    - ``picture (N,) uint8``: ``I_FRAME``, ``P_FRAME`` or ``B_FRAME`` (inferred, see the module doc).
    - ``decode_order (N,) int64``: presentation index of the packet at each stream position.
    - ``pts (N,) int64``: the packet's timestamp in the stream's time base (how decoded frames are matched).
    """

    time_seconds: np.ndarray
    size_bytes: np.ndarray
    is_key: np.ndarray
    picture: np.ndarray
    decode_order: np.ndarray
    pts: np.ndarray

    def __len__(self) -> int:
        return len(self.time_seconds)

    def __repr__(self) -> str:
        return (
            f"PacketTable({len(self)} frames, {int(self.is_key.sum())} keyframes, {int(self.size_bytes.sum())} bytes)"
        )

    @property
    def keyframe_indices(self) -> np.ndarray:
        """``(K,) int64`` presentation indices of the keyframes."""
        return np.flatnonzero(self.is_key)

    def reference_gaps(self) -> np.ndarray:
        """``(N,) int64`` frame intervals a frame's vectors span: to the previous I/P frame for a P-frame,
        to the nearer I/P frame for a B-frame, 1 for keyframes."""
        anchors = np.flatnonzero(self.picture != B_FRAME)
        idx = np.arange(len(self))
        prev = anchors[np.clip(np.searchsorted(anchors, idx, side="left") - 1, 0, None)]
        nxt = anchors[np.clip(np.searchsorted(anchors, idx, side="right"), None, len(anchors) - 1)]
        gaps = np.where(self.picture == B_FRAME, np.minimum(np.abs(idx - prev), np.abs(nxt - idx)), idx - prev)
        gaps[self.is_key] = 1
        return np.maximum(gaps, 1)

    def gop_seconds(self) -> np.ndarray:
        """``(K-1,) float64`` intervals between consecutive keyframes."""
        return np.diff(self.time_seconds[self.is_key])


@dataclass
class PacketColumns:
    """What demuxing records per packet, in decoding order; :meth:`table` sorts it into a PacketTable."""

    times: list[float] = field(default_factory=list)
    pts: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    keys: list[bool] = field(default_factory=list)
    reordered: list[bool] = field(default_factory=list)
    latest: float = -np.inf  # the latest presentation time demuxed so far

    def add(self, t: float, pts: int, size: int, key: bool) -> bool:
        """Record a packet (presentation time ``t``); True when it was reordered (a B-frame)."""
        reordered = t < self.latest
        self.times.append(t)
        self.pts.append(pts)
        self.sizes.append(size)
        self.keys.append(key)
        self.reordered.append(reordered)
        self.latest = max(self.latest, t)
        return reordered

    def extend(self, other: PacketColumns) -> None:
        for name in ("times", "pts", "sizes", "keys", "reordered"):
            getattr(self, name).extend(getattr(other, name))
        self.latest = max(self.latest, other.latest)

    def __len__(self) -> int:
        return len(self.times)

    def table(self) -> PacketTable:
        order = np.argsort(np.asarray(self.times), kind="stable")
        is_key = np.asarray(self.keys, bool)[order]
        picture = np.where(np.asarray(self.reordered, bool)[order], B_FRAME, P_FRAME).astype(np.uint8)
        picture[is_key] = I_FRAME
        return PacketTable(
            time_seconds=np.asarray(self.times, np.float64)[order],
            size_bytes=np.asarray(self.sizes, np.int64)[order],
            is_key=is_key,
            picture=picture,
            decode_order=order.astype(np.int64),
            pts=np.asarray(self.pts, np.int64)[order],
        )


def read_packets(path: str | Path, info: VideoInfo) -> PacketTable:
    """One demux pass over the first video stream; raises CorruptVideoError if no packet comes out."""
    columns = PacketColumns()
    with open_video(path) as container:
        stream = container.streams.video[0]
        base = float(stream.time_base)
        try:
            for packet in container.demux(stream):
                pts, size = packet.pts, packet.size
                if size == 0 or pts is None:
                    continue  # the demuxer's flush packet; packets without a timestamp cannot be placed
                columns.add(pts * base - info.start_seconds, pts, size, packet.is_keyframe)
        except av.FFmpegError as exc:
            if not columns:
                raise CorruptVideoError(path, f"no packet could be read ({ffmpeg_reason(exc)})") from None
            logger.warning(
                "%s: demuxing stopped at %.2fs (%s); using what was read", path, columns.latest, ffmpeg_reason(exc)
            )
    if not columns:
        raise CorruptVideoError(path, "the video stream holds no packets")
    return columns.table()


def _rolling_median(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Median of the ``window`` values before and after each position (the position excluded; edges repeat)."""
    padded = np.pad(values, (window, window + 1), mode="edge")
    medians = np.median(np.lib.stride_tricks.sliding_window_view(padded, window), axis=1)
    n = len(values)
    return medians[:n], medians[window + 1 : window + 1 + n]


def size_spike_cuts(table: PacketTable, ratio: float, min_keyframe_share: float = 0.4, window: int = 15) -> list[int]:
    """Presentation indices of predicted frames that look like scene cuts the encoder placed no keyframe at.

    A cut's first predicted frame finds little to predict from, so its packet is nearly an intra
    frame's: a P-frame is a candidate when it is at least ``min_keyframe_share`` of the median
    keyframe, at least as large as the median P-frame on both sides (``window`` frames each), and
    at least ``ratio`` times the median on one side (a calm scene cut to a busy one is a spike
    against the calm side only). Candidates within a second of each other count once.
    """
    p_idx = np.flatnonzero(table.picture == P_FRAME)
    if len(p_idx) < 3 or not table.is_key.any():
        return []
    sizes = table.size_bytes[p_idx].astype(np.float64)
    before, after = _rolling_median(sizes, window)
    floor = min_keyframe_share * float(np.median(table.size_bytes[table.is_key]))
    spike = (sizes >= floor) & (sizes >= np.maximum(before, after)) & (sizes >= ratio * np.minimum(before, after))
    cuts: list[int] = []
    for i in p_idx[spike]:
        if not cuts or table.time_seconds[i] - table.time_seconds[cuts[-1]] >= 1.0:
            cuts.append(int(i))
    return cuts
