"""One decoding pass over a video: motion timeline, scene cuts and keyframe thumbnails.

Frames are decoded (the decoder must run to export motion vectors) but never converted to RGB,
except the few that become thumbnails: per frame we read the exported vectors and a block-mean
signature of the luma plane, which is a view into the decoder's buffer. The deblocking filter
is skipped (it changes pixels, not vectors) and, where the stream has them, non-reference
frames are not decoded at all.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import av
import numpy as np

from memory.config import IngestConfig
from memory.errors import CorruptVideoError, VideoOpenError
from memory.motion import FrameMotion, MotionTimeline, TimelineBuilder, luma_signature, motion_from_luma, motion_from_vectors
from memory.probe import VideoInfo

logger = logging.getLogger(__name__)

# Codecs whose FFmpeg decoders export motion vectors with flags2=+export_mvs.
MV_CODECS = frozenset({"h264", "mpeg4", "mpeg2video", "mpeg1video", "h263", "msmpeg4v3", "flv1"})
THUMB_MAX_GAP_SECONDS = 10.0
THUMB_MIN_GAP_SECONDS = 1.0
SIGNATURE_SIDE = 64


@dataclass
class ScanResult:
    timeline: MotionTimeline
    cuts_seconds: list[float]
    keyframe_seconds: list[float]  # times of the saved thumbnails, thumbs/00000.jpg, ...
    decoded_frames: int


def _luma(frame: av.VideoFrame) -> np.ndarray:
    fmt = frame.format.name
    if fmt.startswith(("yuv", "yuvj", "nv12", "nv21", "gray")):
        plane = frame.planes[0]
        buf = np.frombuffer(plane, dtype=np.uint8)
        if buf.size >= plane.line_size * frame.height:
            return buf[: plane.line_size * frame.height].reshape(frame.height, plane.line_size)[:, : frame.width]
    return frame.to_ndarray(format="gray")


def _shift_compensated_change(prev: np.ndarray, cur: np.ndarray, max_shift: int = 2) -> float:
    """Smallest mean absolute luma difference over small global shifts, in [0, 1]."""
    h, w = cur.shape
    best = np.inf
    for sy in range(-max_shift, max_shift + 1):
        for sx in range(-max_shift, max_shift + 1):
            a = cur[max(0, sy): h + min(0, sy), max(0, sx): w + min(0, sx)]
            b = prev[max(0, -sy): h + min(0, -sy), max(0, -sx): w + min(0, -sx)]
            best = min(best, float(np.abs(a - b).mean()))
    return best / 255.0


class _CutDetector:
    """A frame starts a new shot when its luma signature jumps far above the recent level."""

    def __init__(self, config: IngestConfig) -> None:
        self.config = config
        self.recent: deque[float] = deque(maxlen=30)
        self.cuts: list[float] = []

    def update(self, t: float, change: float, intra: float, is_key: bool) -> bool:
        baseline = float(np.median(self.recent)) if self.recent else 0.0
        self.recent.append(change)
        jump = change > 0.05 and change > 4.0 * baseline + 0.02
        cut = jump and (is_key or intra >= self.config.cut_threshold or change > 0.1)
        if cut and (not self.cuts or t - self.cuts[-1] >= self.config.min_cut_gap_seconds) and t > 0:
            self.cuts.append(round(t, 3))
            return True
        return False


def _save_thumb(frame: av.VideoFrame, info: VideoInfo, config: IngestConfig, path: Path) -> None:
    w, h = frame.width, frame.height
    scale = config.thumbnail_max_side / max(w, h)
    tw, th = max(2, int(round(w * scale / 2)) * 2), max(2, int(round(h * scale / 2)) * 2)
    img = frame.to_image(width=tw, height=th)
    if info.rotation_degrees:
        img = img.rotate(info.rotation_degrees, expand=True)
    img.save(path, format="JPEG", quality=85)


def scan(path: str | Path, info: VideoInfo, config: IngestConfig, thumbs_dir: Path,
         progress: Callable[[float], None] | None = None) -> ScanResult:
    """Decode ``path`` once; write thumbnails into ``thumbs_dir``; return the timeline and cuts."""
    use_mvs = info.codec in MV_CODECS
    builder = TimelineBuilder(config.bin_seconds, "motion_vectors" if use_mvs else "frame_diff")
    cuts = _CutDetector(config)
    thumbs_dir.mkdir(parents=True, exist_ok=True)
    thumb_times: list[float] = []
    prev_sig: np.ndarray | None = None
    decoded = 0
    last_progress = -1.0
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise VideoOpenError(path, f"cannot open ({exc})") from None
    with container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        # Deblocking changes pixels, not vectors or cut statistics: skip it.
        options = {"skip_loop_filter": "all"}
        if use_mvs:
            # SLICE threading (the default) keeps vectors on every frame; FRAME/AUTO drops some.
            options["flags2"] = "+export_mvs"
        ctx.options = options
        # Non-reference frames (most B-frames) carry nothing the reference frames around them
        # don't: skipping them halves decoding work on typical encodes.
        ctx.skip_frame = "NONREF"
        prev_t: float | None = None
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                t = float(frame.time)
                decoded += 1
                sig = luma_signature(_luma(frame), SIGNATURE_SIDE)
                is_key = bool(frame.key_frame)
                if use_mvs:
                    mvs = frame.side_data.get("MOTION_VECTORS")
                    if mvs is not None and len(mvs):
                        # Vectors span the gap to the reference frame: express them per frame.
                        gap = max(1.0, round((t - prev_t) * info.fps)) if prev_t is not None else 1.0
                        fm = motion_from_vectors(mvs.to_ndarray(), frame.width, frame.height, config.moving_threshold * gap, t)
                        fm.scale(1.0 / gap)
                        if fm.intra_fraction >= config.cut_threshold:  # a cut: its vectors are noise
                            fm = FrameMotion(time_seconds=t, intra_fraction=fm.intra_fraction)
                    else:
                        fm = FrameMotion(time_seconds=t, intra_fraction=1.0 if (is_key or mvs is None) else 0.0)
                elif prev_sig is not None:
                    fm = motion_from_luma(prev_sig, sig, config.moving_threshold * 4, t)
                else:
                    fm = FrameMotion(time_seconds=t, intra_fraction=1.0)
                change = float(np.abs(sig - prev_sig).mean() / 255.0) if prev_sig is not None else 0.0
                if change > 0.05:  # a cut candidate: discount what a camera shift explains
                    change = _shift_compensated_change(prev_sig, sig)
                prev_sig = sig
                prev_t = t
                if decoded > 1:
                    builder.add(fm)
                is_cut = cuts.update(t, change, fm.intra_fraction, is_key)
                since = t - thumb_times[-1] if thumb_times else math.inf
                if is_cut or (is_key and since >= THUMB_MIN_GAP_SECONDS) or since >= THUMB_MAX_GAP_SECONDS:
                    _save_thumb(frame, info, config, thumbs_dir / f"{len(thumb_times):05d}.jpg")
                    thumb_times.append(round(t, 3))
                if progress is not None and t - last_progress >= 1.0:
                    last_progress = t
                    progress(min(1.0, t / info.duration_seconds))
        except av.FFmpegError as exc:
            if decoded == 0:
                raise CorruptVideoError(path, f"no frame could be decoded ({exc})") from None
            logger.warning("%s: decoding stopped at frame %d (%s); using what was decoded", path, decoded, exc)
    if decoded == 0:
        raise CorruptVideoError(path, "no frame could be decoded")
    if progress is not None:
        progress(1.0)
    return ScanResult(builder.build(info.duration_seconds), cuts.cuts, thumb_times, decoded)
