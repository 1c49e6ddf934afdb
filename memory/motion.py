"""Motion from the compressed stream: per-frame statistics, one streaming pass, a fixed-bin timeline.

Two sources. H.264 / MPEG-4 Part 2 / MPEG-2 decoders export their motion vectors
(``flags2=+export_mvs``), so motion costs no pixel work at all. Codecs that export none
(VP8/VP9/HEVC/AV1 ...) fall back to differences between block-mean luma signatures.
Displacements are content displacements in pixels per frame divided by the frame diagonal, so
numbers compare across resolutions. Image y points down: "up" is -y.
"""

from __future__ import annotations

import gc
import logging
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from foveate.memory.config import IngestConfig
from foveate.memory.errors import CorruptVideoError
from foveate.memory.probe import VideoInfo, ffmpeg_reason, open_video

logger = logging.getLogger(__name__)

# Decoders that export motion vectors with flags2=+export_mvs (libavcodec/mpegutils.c, h264).
MV_CODECS = frozenset({"h264", "mpeg4", "mpeg2video", "mpeg1video", "h263", "h263p", "msmpeg4v2", "msmpeg4v3", "flv1"})
# A vector codec whose first predicted frames carry no vectors at all gets the fallback.
_FRAMES_WITHOUT_VECTORS = 12
# Block-matching of 1000 vectors gives the same medians as 8000 at an eighth of the cost.
_MAX_VECTORS = 1024
# A range scan starts decoding at the keyframe at least this long before the range.
_WARMUP_SECONDS = 1.0


def direction_label(dx: float, dy: float) -> str:
    """The dominant of right/up/left/down for an image-space displacement (y down).

    Four words, not eight: block-matching vectors of a small object carry enough noise across
    the other axis that diagonal labels would flicker. ``direction_degrees`` keeps the angle.
    """
    if abs(dx) >= abs(dy):
        return "right" if dx >= 0 else "left"
    return "up" if dy < 0 else "down"


def direction_degrees(dx: float, dy: float) -> float:
    """Compass angle of an image-space displacement: 0 right, 90 up, 180 left, 270 down."""
    return round(math.degrees(math.atan2(-dy, dx)) % 360.0, 1)


@dataclass
class FrameMotion:
    """Motion of one decoded frame. Displacements are fractions of the frame diagonal per frame."""

    time_seconds: float
    camera_dx: float = 0.0
    camera_dy: float = 0.0
    magnitude: float = 0.0  # mean |displacement| over the frame (camera + objects)
    local_fraction: float = 0.0  # area fraction moving relative to the camera
    local_dx: float = 0.0  # mean residual displacement of the locally moving blocks
    local_dy: float = 0.0


def intra_fraction(mvs: np.ndarray, width: int, height: int) -> float:
    """Frame area not predicted from a past frame (intra-coded), from an AVMotionVector array."""
    past = mvs["source"] < 0
    covered = float(np.dot(mvs["w"][past].astype(np.float32), mvs["h"][past]))
    return min(1.0, max(0.0, 1.0 - covered / (width * height)))


def motion_from_vectors(mvs: np.ndarray, width: int, height: int, moving_threshold: float, t: float) -> FrameMotion:
    """FrameMotion from an AVMotionVector structured array (PyAV ``MotionVectors.to_ndarray()``).

    FFmpeg defines ``src = dst + motion / motion_scale`` (libavutil/motion_vector.h): for a past
    reference (source < 0) the block moved from src to dst, so the content displacement is
    ``-motion / scale``; a future reference points the other way. Using motion_x rather than
    dst_x - src_x keeps the quarter-pel precision that slow pans need.
    """
    if len(mvs) > _MAX_VECTORS:
        mvs = mvs[:: len(mvs) // _MAX_VECTORS]
    diag = math.hypot(width, height)
    sign = np.where(mvs["source"] < 0, -1.0 / diag, 1.0 / diag).astype(np.float32) / mvs["motion_scale"]
    dx = mvs["motion_x"] * sign
    dy = mvs["motion_y"] * sign
    area = mvs["w"].astype(np.float32) * mvs["h"]
    total = float(area.sum())
    cam_dx, cam_dy = float(np.median(dx)), float(np.median(dy))  # robust global (camera) motion
    rx, ry = dx - cam_dx, dy - cam_dy
    moving = (rx * rx + ry * ry) > moving_threshold * moving_threshold
    fm = FrameMotion(
        time_seconds=t, camera_dx=cam_dx, camera_dy=cam_dy, magnitude=float(np.dot(np.hypot(dx, dy), area) / total)
    )
    if moving.any():
        w = area[moving]
        ws = float(w.sum())
        fm.local_fraction = ws / total
        fm.local_dx = float(np.dot(rx[moving], w) / ws)
        fm.local_dy = float(np.dot(ry[moving], w) / ws)
    return fm


def luma_plane(frame: av.VideoFrame) -> np.ndarray:
    """The (H, W) uint8 luma plane: a view into the decoder's buffer for 8-bit YUV formats."""
    fmt = frame.format.name
    if fmt.startswith(("yuv", "yuvj", "nv12", "nv21", "gray")) and not any(b in fmt for b in ("10", "12", "16")):
        plane = frame.planes[0]
        buf = np.frombuffer(plane, dtype=np.uint8)
        if buf.size >= plane.line_size * frame.height:
            return buf[: plane.line_size * frame.height].reshape(frame.height, plane.line_size)[:, : frame.width]
    return frame.to_ndarray(format="gray")


def luma_signature(plane: np.ndarray, side: int) -> np.ndarray:
    """A (~side x ~side) float32 block-mean thumbnail of a luma plane (H, W) uint8."""
    h, w = plane.shape
    step = max(1, max(h, w) // side)
    # Average a 4x4 grid of samples per block, not every pixel: reading a whole 1080p plane
    # costs more than decoding it, and 16 samples already suppress aliasing on textures.
    sub = max(1, step // 4)
    k = step // sub
    small = plane[: h - h % step : sub, : w - w % step : sub]
    hh, ww = small.shape[0] // k, small.shape[1] // k
    return small[: hh * k, : ww * k].reshape(hh, k, ww, k).mean(axis=(1, 3), dtype=np.float32)


def best_shift(prev: np.ndarray, cur: np.ndarray, max_shift: int = 2) -> tuple[int, int, float]:
    """Global shift (sx, sy) of ``cur`` against ``prev`` with the smallest mean abs difference (0..1)."""
    h, w = cur.shape
    best = (0, 0, float(np.abs(cur - prev).mean()))
    for sy in range(-max_shift, max_shift + 1):
        for sx in range(-max_shift, max_shift + 1):
            if sx == 0 and sy == 0:
                continue
            a = cur[max(0, sy) : h + min(0, sy), max(0, sx) : w + min(0, sx)]
            b = prev[max(0, -sy) : h + min(0, -sy), max(0, -sx) : w + min(0, -sx)]
            err = float(np.abs(a - b).mean())
            if err < best[2] - 1e-6:
                best = (sx, sy, err)
    return best[0], best[1], best[2] / 255.0


def motion_from_luma(prev: np.ndarray, cur: np.ndarray, moving_threshold: float, t: float) -> FrameMotion:
    """FrameMotion from two luma signatures: a brute-force global shift, then the residual change."""
    h, w = cur.shape
    diag = math.hypot(w, h)
    sx, sy, _ = best_shift(prev, cur)
    a = cur[max(0, sy) : h + min(0, sy), max(0, sx) : w + min(0, sx)]
    b = prev[max(0, -sy) : h + min(0, -sy), max(0, -sx) : w + min(0, -sx)]
    residual = np.abs(a - b) / 255.0
    changed = residual > max(0.04, 10 * moving_threshold)
    return FrameMotion(
        time_seconds=t,
        camera_dx=sx / diag,
        camera_dy=sy / diag,
        magnitude=math.hypot(sx, sy) / diag + float(residual.mean()),
        local_fraction=float(changed.mean()),
    )


@dataclass
class FrameSample:
    """What the motion pass learnt about one decoded frame."""

    time_seconds: float
    is_key: bool
    intra_fraction: float  # area not predicted from the past: 1 for I-frames
    motion: FrameMotion | None  # None for frames not analysed (at most a few per bin are)
    # Luma-signature change from the previous frame (0..1), when computed; camera shift
    # discounted once it reaches ``cut_min_change`` (below, the plain difference).
    change: float | None
    baseline_change: float | None  # the same for the previous pair of frames, when ``change`` reaches it
    frame: av.VideoFrame  # valid until the next sample; convert only what you keep


@dataclass
class MotionScanner:
    """One streaming decoding pass over ``[start_seconds, end_seconds)`` yielding a FrameSample per frame.

    Frames are decoded (the decoder must run to export vectors) but never converted to RGB;
    memory stays flat. In vector mode luma signatures are computed only for cut candidates.
    A range that starts after 0 seeks to the keyframe before it and decodes up to the range
    without yielding (the decoder and the cut statistics need the frames before it), so ranges
    split at the same times together yield every frame exactly once: scanning them in parallel
    threads (PyAV releases the GIL while decoding) is how the overview uses several cores.
    """

    path: str | Path
    info: VideoInfo
    config: IngestConfig
    samples_per_bin: int = 6
    start_seconds: float = 0.0
    end_seconds: float = math.inf
    source: str = field(init=False)
    decoded: int = field(init=False, default=0)
    last_time_seconds: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._recent_intra: deque[float] = deque(maxlen=15)
        self.source = "motion_vectors" if self.info.codec in MV_CODECS else "frame_diff"

    @property
    def is_last_range(self) -> bool:
        return self.end_seconds >= self.info.duration_seconds

    def __iter__(self) -> Iterator[FrameSample]:
        with open_video(self.path) as container:
            stream = container.streams.video[0]
            self._configure(stream)
            if self.start_seconds > 0:
                # A keyframe a little before the range, so that its first frame has predecessors
                # (a cut right at the start is found, as in one pass over the whole video).
                target = self.start_seconds - _WARMUP_SECONDS + self.info.start_seconds
                if target > self.info.start_seconds:
                    container.seek(int(target / stream.time_base), stream=stream)
            try:
                yield from self._samples(container, stream)
            except av.FFmpegError as exc:
                if self.decoded == 0:
                    raise CorruptVideoError(self.path, f"no frame could be decoded ({ffmpeg_reason(exc)})") from None
                logger.warning(
                    "%s: decoding stopped at %.2fs (%s); using what was decoded",
                    self.path,
                    self.last_time_seconds,
                    ffmpeg_reason(exc),
                )
        if self.decoded == 0:
            raise CorruptVideoError(self.path, "no frame could be decoded")
        if self.is_last_range and self.last_time_seconds < self.info.duration_seconds - max(
            1.0, 0.1 * self.info.duration_seconds
        ):
            logger.warning(
                "%s: frames end at %.1fs of %.1fs; the file is probably truncated",
                self.path,
                self.last_time_seconds,
                self.info.duration_seconds,
            )

    def _intra_jump(self, intra: float) -> bool:
        """Is this frame's intra-coded area a jump (a cut candidate) against the frames before it?"""
        recent = self._recent_intra
        jump = intra >= self.config.cut_threshold and (
            intra >= 0.8 or intra >= 2.0 * float(np.median(recent or [0.0]))
        )
        recent.append(intra)
        return jump

    def _configure(self, stream) -> None:
        ctx = stream.codec_context
        # Slice threading (PyAV's default), not frame threading: frame threading exports
        # slightly different vectors on some frames, and with vector export and skipped
        # non-reference frames it measured slower than one thread (docs/benchmarks.md).
        # Cores are used by scanning time ranges in parallel instead.
        stream.thread_type = "SLICE"
        options = {"skip_loop_filter": "all"} if self.config.skip_loop_filter else {}
        if self.source == "motion_vectors":
            options["flags2"] = "+export_mvs"
        ctx.options = options
        # Non-reference frames (most B-frames) carry nothing the reference frames around them
        # don't: skipping them halves decoding work on typical encodes.
        ctx.skip_frame = "NONREF"

    def _samples(self, container, stream) -> Iterator[FrameSample]:
        side = self.config.fallback_side
        start = self.info.start_seconds
        min_change = self.config.cut_min_change
        analyse_every = self.config.bin_seconds / self.samples_per_bin
        next_analysis = -math.inf
        # The last two frames and their luma signatures (computed lazily, for cut candidates).
        recent: deque[list] = deque(maxlen=2)
        prev_sig: np.ndarray | None = None
        prev_change: float | None = None
        prev_t: float | None = None
        with_vectors = without_vectors = 0

        def signature(entry: list) -> np.ndarray:
            if entry[1] is None:
                entry[1] = luma_signature(luma_plane(entry[0]), side)
            return entry[1]

        for n, frame in enumerate(container.decode(stream)):
            if n % 32 == 31:
                gc.collect()  # frames whose vectors were read sit in cycles: memory.threads.collecting_cycles
            if frame.time is None:
                continue
            t = float(frame.time) - start
            if t >= self.end_seconds:
                break
            warmup = t < self.start_seconds
            if not warmup:
                self.decoded += 1
                self.last_time_seconds = t
            is_key = bool(frame.key_frame)
            motion, change, baseline = None, None, None
            entry = [frame, None]
            if self.source == "motion_vectors":
                mvs = frame.side_data.get("MOTION_VECTORS")
                arr = mvs.to_ndarray() if mvs is not None and len(mvs) else None
                intra = 1.0 if arr is None else intra_fraction(arr, frame.width, frame.height)
                with_vectors += arr is not None
                without_vectors += arr is None and not is_key
                if with_vectors == 0 and without_vectors >= _FRAMES_WITHOUT_VECTORS:
                    logger.info("%s: no motion vectors came out; using frame differences", self.path)
                    self.source = "frame_diff"
                candidate = is_key or self._intra_jump(intra)
                if arr is not None and t >= next_analysis and not candidate and not warmup:
                    next_analysis = t + analyse_every
                    gap = max(1.0, round((t - prev_t) * self.info.fps)) if prev_t is not None else 1.0
                    motion = motion_from_vectors(arr, frame.width, frame.height, self.config.moving_threshold * gap, t)
                    scale_motion(motion, 1.0 / gap)  # vectors span the gap to the reference frame
                if candidate and recent and not warmup:
                    cur, prev = signature(entry), signature(recent[-1])
                    # The plain difference bounds the camera-discounted one from above: below the
                    # cut threshold the shift search cannot matter, and neither can the baseline.
                    change = float(np.abs(cur - prev).mean()) / 255.0
                    if change >= min_change:
                        change = best_shift(prev, cur)[2]
                        baseline = best_shift(signature(recent[0]), prev)[2] if len(recent) == 2 else 0.0
            else:
                sig = entry[1] = luma_signature(luma_plane(frame), side)
                intra = 1.0 if prev_sig is None else 0.0
                if prev_sig is not None:
                    if not warmup:
                        motion = motion_from_luma(prev_sig, sig, self.config.moving_threshold, t)
                    change = float(np.abs(sig - prev_sig).mean()) / 255.0
                    if change > min_change:  # discount what a camera shift explains
                        change = best_shift(prev_sig, sig)[2]
                    baseline, prev_change = prev_change, change
                prev_sig = sig
            if not warmup:
                yield FrameSample(t, is_key, intra, motion, change, baseline, frame)
            recent.append(entry)
            prev_t = t


def scale_motion(fm: FrameMotion, factor: float) -> None:
    """Scale every displacement of ``fm`` in place (vectors that span several frame intervals -> per frame)."""
    fm.camera_dx *= factor
    fm.camera_dy *= factor
    fm.magnitude *= factor
    fm.local_dx *= factor
    fm.local_dy *= factor


class MotionTimeline(BaseModel):
    """Motion aggregated into fixed bins ``[i * bin_seconds, (i + 1) * bin_seconds)``."""

    model_config = ConfigDict(frozen=True)

    bin_seconds: float = Field(gt=0, description="Bin width, seconds.")
    source: str = Field(description="'motion_vectors' or 'frame_diff'.")
    magnitude: list[float] = Field(description="Mean displacement per frame, fraction of the diagonal.")
    camera_dx: list[float] = Field(
        description="Camera (global) content displacement per frame, x, fraction of the diagonal."
    )
    camera_dy: list[float] = Field(
        description="Camera (global) content displacement per frame, y (down), fraction of the diagonal."
    )
    local_fraction: list[float] = Field(description="Area fraction moving relative to the camera (moving blocks).")
    local_dx: list[float] = Field(description="Mean displacement of locally moving blocks relative to the camera, x.")
    local_dy: list[float] = Field(description="Same, y (down).")
    intra_fraction: list[float] = Field(
        description="Largest intra-coded area fraction of a frame in the bin (1 at keyframes); from packet "
        "sizes (a frame's size over the keyframes' median size) when not every frame is decoded."
    )
    bytes_per_frame: list[float] = Field(
        default_factory=list,
        description="Mean compressed size of the bin's frames, bytes (bits are spent where the picture changes); "
        "empty when the scan did not read packet sizes.",
    )
    sampled: list[bool] = Field(
        default_factory=list,
        description="Whether the bin's motion was measured (True) or held from the nearest measured bin of the "
        "same shot (False); empty when every bin was measured.",
    )

    @property
    def n_bins(self) -> int:
        return len(self.magnitude)

    def camera_magnitude(self) -> np.ndarray:
        """(n_bins,) float64 camera displacement per frame, fraction of the diagonal."""
        return np.hypot(self.camera_dx, self.camera_dy)

    def local_magnitude(self) -> np.ndarray:
        """(n_bins,) float64 object displacement weighted by the square root of the moving area."""
        return np.hypot(self.local_dx, self.local_dy) * np.asarray(self.local_fraction) ** 0.5

    def object_direction(self, i: int) -> str:
        return direction_label(self.local_dx[i], self.local_dy[i])

    def object_degrees(self, i: int) -> float:
        return direction_degrees(self.local_dx[i], self.local_dy[i])

    def camera_direction(self, i: int) -> str:
        """Where the camera pans: opposite to the content's displacement."""
        return direction_label(-self.camera_dx[i], -self.camera_dy[i])

    def camera_degrees(self, i: int) -> float:
        return direction_degrees(-self.camera_dx[i], -self.camera_dy[i])


@dataclass
class TimelineBuilder:
    """Accumulates FrameMotion records into bins in O(bins) memory."""

    bin_seconds: float
    _sums: list[np.ndarray] = field(default_factory=list)
    _counts: list[int] = field(default_factory=list)
    _intra: list[float] = field(default_factory=list)

    def _bin(self, t: float) -> int:
        i = max(0, int(t / self.bin_seconds))
        while len(self._sums) <= i:
            self._sums.append(np.zeros(6))
            self._counts.append(0)
            self._intra.append(0.0)
        return i

    def add_intra(self, t: float, intra: float) -> None:
        i = self._bin(t)
        self._intra[i] = max(self._intra[i], intra)

    def merge(self, other: TimelineBuilder) -> None:
        """Add another builder's bins (same bin width), e.g. one that scanned a later time range."""
        if other.bin_seconds != self.bin_seconds:
            raise ValueError(f"bin widths differ: {self.bin_seconds} vs {other.bin_seconds}")
        if other._sums:
            self._bin((len(other._sums) - 0.5) * self.bin_seconds)
        for i, (sums, count, intra) in enumerate(zip(other._sums, other._counts, other._intra)):
            self._sums[i] = self._sums[i] + sums
            self._counts[i] += count
            self._intra[i] = max(self._intra[i], intra)

    def measured(self, n_bins: int) -> np.ndarray:
        """``(n_bins,) bool``: the bins that received at least one FrameMotion."""
        out = np.zeros(n_bins, bool)
        m = min(n_bins, len(self._counts))
        out[:m] = np.asarray(self._counts[:m]) > 0
        return out

    def add(self, fm: FrameMotion) -> None:
        i = self._bin(fm.time_seconds)
        self._sums[i] += (
            fm.magnitude,
            fm.camera_dx,
            fm.camera_dy,
            fm.local_fraction,
            fm.local_dx * fm.local_fraction,
            fm.local_dy * fm.local_fraction,
        )
        self._counts[i] += 1

    def build(self, duration_seconds: float, source: str) -> MotionTimeline:
        n = max(1, math.ceil(duration_seconds / self.bin_seconds - 1e-9))
        sums, counts, intra = np.zeros((n, 6)), np.zeros(n), np.zeros(n)
        m = min(n, len(self._sums))
        if m:
            sums[:m], counts[:m], intra[:m] = np.stack(self._sums[:m]), self._counts[:m], self._intra[:m]
        mean = sums / np.maximum(counts, 1)[:, None]
        frac = mean[:, 3]
        # Local direction: displacement weighted by moving area, so a bin's direction is that
        # of what moved, not diluted by the static frames in it.
        ldx = np.divide(mean[:, 4], frac, out=np.zeros(n), where=frac > 0)
        ldy = np.divide(mean[:, 5], frac, out=np.zeros(n), where=frac > 0)
        r = lambda a: np.round(np.asarray(a, np.float64), 6).tolist()  # noqa: E731
        return MotionTimeline(
            bin_seconds=self.bin_seconds,
            source=source,
            magnitude=r(mean[:, 0]),
            camera_dx=r(mean[:, 1]),
            camera_dy=r(mean[:, 2]),
            local_fraction=r(frac),
            local_dx=r(ldx),
            local_dy=r(ldy),
            intra_fraction=r(intra),
        )
