"""Per-frame motion statistics and their aggregation into a fixed-bin timeline.

Two sources: H.264/MPEG-4/MPEG-2 motion vectors exported by the decoder (cheap: no pixels are
converted), or, for codecs that export none (VP8/VP9/HEVC/AV1 ...), differences between
low-resolution luma frames. Displacements are in pixels per decoded frame, normalised by the
frame diagonal so numbers compare across resolutions. Image y points down: "up" is -y.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

def direction_label(dx: float, dy: float) -> str:
    """The dominant of right/up/left/down for an image-space displacement (y down).

    Four words, not eight: block-matching vectors of a small object carry enough noise across
    the other axis that diagonal labels would flicker.
    """
    if abs(dx) >= abs(dy):
        return "right" if dx >= 0 else "left"
    return "up" if dy < 0 else "down"


@dataclass
class FrameMotion:
    """Motion of one decoded frame. Displacements are fractions of the frame diagonal."""

    time_seconds: float
    camera_dx: float = 0.0
    camera_dy: float = 0.0
    magnitude: float = 0.0  # mean |displacement| over the frame (camera + objects)
    local_fraction: float = 0.0  # area fraction moving relative to the camera
    local_dx: float = 0.0  # mean residual displacement of the locally moving blocks
    local_dy: float = 0.0
    intra_fraction: float = 0.0  # area not predicted from other frames (1 for I-frames)

    def scale(self, factor: float) -> None:
        """Rescale displacements (e.g. from per-reference-gap to per-frame)."""
        self.camera_dx *= factor
        self.camera_dy *= factor
        self.magnitude *= factor
        self.local_dx *= factor
        self.local_dy *= factor


def motion_from_vectors(mvs: np.ndarray, width: int, height: int, moving_threshold: float, t: float) -> FrameMotion:
    """FrameMotion from an AVMotionVector structured array (PyAV ``to_ndarray()``)."""
    diag = math.hypot(width, height)
    src = mvs["source"]
    past = src < 0
    # For a past reference (source < 0) the block moved from src to dst; a future reference
    # points the other way (FFmpeg libavutil/motion_vector.h).
    sign = np.where(past, 1.0 / diag, -1.0 / diag).astype(np.float32)
    dx = (mvs["dst_x"] - mvs["src_x"]) * sign
    dy = (mvs["dst_y"] - mvs["src_y"]) * sign
    area = mvs["w"].astype(np.float32) * mvs["h"]
    total = float(area.sum())
    covered = float(area[past].sum()) if past.any() else total
    intra = min(1.0, max(0.0, 1.0 - covered / (width * height)))
    cam_dx, cam_dy = float(np.median(dx)), float(np.median(dy))
    rx, ry = dx - cam_dx, dy - cam_dy
    moving = (rx * rx + ry * ry) > moving_threshold * moving_threshold
    fm = FrameMotion(time_seconds=t, camera_dx=cam_dx, camera_dy=cam_dy,
                     magnitude=float(np.dot(np.hypot(dx, dy), area) / total), intra_fraction=intra)
    if moving.any():
        w = area[moving]
        ws = float(w.sum())
        fm.local_fraction = ws / total
        fm.local_dx = float(np.dot(rx[moving], w) / ws)
        fm.local_dy = float(np.dot(ry[moving], w) / ws)
    return fm


def luma_signature(plane: np.ndarray, side: int) -> np.ndarray:
    """A (~side x ~side) float32 block-mean thumbnail of a luma plane (H, W) uint8."""
    # Subsample before averaging: reading every pixel of a 1080p plane costs more than decoding.
    sub = max(1, int(max(plane.shape) // (side * 4)))
    plane = plane[::sub, ::sub]
    h, w = plane.shape
    step = max(1, int(max(h, w) // side))
    small = plane[: h - h % step, : w - w % step]
    hh, ww = small.shape[0] // step, small.shape[1] // step
    return small.reshape(hh, step, ww, step).mean(axis=(1, 3), dtype=np.float32)


def motion_from_luma(prev: np.ndarray, cur: np.ndarray, moving_threshold: float, t: float, max_shift: int = 2) -> FrameMotion:
    """FrameMotion from two luma signatures: a brute-force global shift, then residual change."""
    h, w = cur.shape
    diag = math.hypot(w, h)
    best, best_err = (0, 0), np.inf
    for sy in range(-max_shift, max_shift + 1):
        for sx in range(-max_shift, max_shift + 1):
            a = cur[max(0, sy): h + min(0, sy), max(0, sx): w + min(0, sx)]
            b = prev[max(0, -sy): h + min(0, -sy), max(0, -sx): w + min(0, -sx)]
            err = float(np.abs(a - b).mean())
            if err < best_err - 1e-6:
                best, best_err = (sx, sy), err
    diff = np.abs(cur - prev) / 255.0
    changed = diff > 0.08
    return FrameMotion(
        time_seconds=t,
        camera_dx=best[0] / diag,
        camera_dy=best[1] / diag,
        magnitude=float(diff.mean()),
        local_fraction=float(changed.mean()) if best == (0, 0) else float((np.abs(cur[2:-2, 2:-2] - prev[2:-2, 2:-2]) / 255 > 0.08).mean()),
        intra_fraction=float(changed.mean()),
    )


class MotionTimeline(BaseModel):
    """Motion aggregated into fixed bins ``[i * bin_seconds, (i + 1) * bin_seconds)``."""

    model_config = ConfigDict(frozen=True)

    bin_seconds: float = Field(gt=0, description="Bin width, seconds.")
    source: str = Field(description="'motion_vectors' or 'frame_diff'.")
    magnitude: list[float] = Field(description="Mean displacement per frame, fraction of the diagonal.")
    camera_dx: list[float] = Field(description="Camera (global) displacement per frame, x, fraction of the diagonal.")
    camera_dy: list[float] = Field(description="Camera (global) displacement per frame, y (down), fraction of the diagonal.")
    local_fraction: list[float] = Field(description="Area fraction moving relative to the camera.")
    local_dx: list[float] = Field(description="Mean displacement of locally moving blocks relative to the camera, x.")
    local_dy: list[float] = Field(description="Same, y (down).")
    intra_fraction: list[float] = Field(description="Largest intra-coded / changed area fraction in the bin.")

    @property
    def n_bins(self) -> int:
        return len(self.magnitude)

    def camera_magnitude(self) -> np.ndarray:
        return np.hypot(self.camera_dx, self.camera_dy)

    def local_magnitude(self) -> np.ndarray:
        return np.hypot(self.local_dx, self.local_dy) * np.asarray(self.local_fraction) ** 0.5

    def object_direction(self, i: int) -> str:
        return direction_label(self.local_dx[i], self.local_dy[i])

    def camera_direction(self, i: int) -> str:
        return direction_label(self.camera_dx[i], self.camera_dy[i])


@dataclass
class TimelineBuilder:
    """Accumulates FrameMotion records into bins in O(bins) memory."""

    bin_seconds: float
    source: str
    _sums: list[np.ndarray] = field(default_factory=list)
    _counts: list[int] = field(default_factory=list)
    _intra: list[float] = field(default_factory=list)

    def add(self, fm: FrameMotion) -> None:
        i = max(0, int(fm.time_seconds / self.bin_seconds))
        while len(self._sums) <= i:
            self._sums.append(np.zeros(6))
            self._counts.append(0)
            self._intra.append(0.0)
        self._sums[i] += (fm.magnitude, fm.camera_dx, fm.camera_dy, fm.local_fraction,
                          fm.local_dx * fm.local_fraction, fm.local_dy * fm.local_fraction)
        self._counts[i] += 1
        self._intra[i] = max(self._intra[i], fm.intra_fraction)

    def build(self, duration_seconds: float) -> MotionTimeline:
        n = max(1, math.ceil(duration_seconds / self.bin_seconds - 1e-9))
        sums = np.zeros((n, 6))
        counts = np.zeros(n)
        intra = np.zeros(n)
        m = min(n, len(self._sums))
        if m:
            sums[:m] = np.stack(self._sums[:m])
            counts[:m] = self._counts[:m]
            intra[:m] = self._intra[:m]
        mean = sums / np.maximum(counts, 1)[:, None]
        frac = mean[:, 3]
        # Local direction: displacement-weighted by moving area, so a bin's direction is that
        # of what moved, not diluted by the static frames in it.
        ldx = np.divide(mean[:, 4], frac, out=np.zeros(n), where=frac > 0)
        ldy = np.divide(mean[:, 5], frac, out=np.zeros(n), where=frac > 0)
        r = lambda a: [round(float(x), 6) for x in a]  # noqa: E731
        return MotionTimeline(bin_seconds=self.bin_seconds, source=self.source, magnitude=r(mean[:, 0]),
                              camera_dx=r(mean[:, 1]), camera_dy=r(mean[:, 2]), local_fraction=r(frac),
                              local_dx=r(ldx), local_dy=r(ldy), intra_fraction=r(intra))
