"""Content-based segments: split at cuts and at changes in motion, merge short, split long."""

from __future__ import annotations

import bisect

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from foveate.memory.config import IngestConfig
from foveate.memory.motion import MotionTimeline, direction_degrees, direction_label

# Below these (fractions of the diagonal per frame) motion reads as "still".
STILL_CAMERA = 0.0008
STILL_OBJECTS = 0.0002


class Segment(BaseModel):
    """A stretch ``[start_seconds, end_seconds)`` of homogeneous content."""

    model_config = ConfigDict(frozen=True)

    start_seconds: float = Field(ge=0)
    end_seconds: float = Field(gt=0)
    starts_with_cut: bool = Field(default=False, description="The segment begins at a detected scene cut.")
    motion: float = Field(ge=0, description="Mean motion magnitude, fraction of the diagonal per frame.")
    camera_motion: float = Field(
        default=0.0, ge=0, description="Mean camera (global) displacement, fraction of the diagonal per frame."
    )
    object_motion: float = Field(
        default=0.0,
        ge=0,
        description="Mean object displacement relative to the camera, weighted by sqrt(moving area).",
    )
    camera: str = Field(description="Camera motion: 'still' or 'pan <direction>'.")
    camera_degrees: float | None = Field(
        default=None, description="Pan direction, compass degrees (0 right, 90 up); None when still."
    )
    objects: str = Field(description="Object motion relative to the camera: 'still' or 'moving <direction>'.")
    objects_degrees: float | None = Field(
        default=None, description="Object direction, compass degrees (0 right, 90 up); None when still."
    )
    keyframe: int | None = Field(default=None, description="Index of the representative keyframe thumbnail.")

    def describe_motion(self) -> str:
        parts = [
            p
            for p in (self.camera if self.camera != "still" else "", self.objects if self.objects != "still" else "")
            if p
        ]
        return ", ".join(parts) or "static"


def _boundaries(
    timeline: MotionTimeline, cuts: list[float], duration: float, config: IngestConfig
) -> list[tuple[float, bool]]:
    bounds = {0.0: False}
    for c in cuts:
        if 0 < c < duration:
            bounds[round(c, 3)] = True
    activity = np.asarray(timeline.magnitude) + timeline.local_magnitude()
    frac = np.sqrt(np.asarray(timeline.local_fraction))
    flow = np.stack([np.asarray(timeline.local_dx) * frac, np.asarray(timeline.local_dy) * frac], axis=1)
    pan = np.stack([np.asarray(timeline.camera_dx), np.asarray(timeline.camera_dy)], axis=1)
    k = max(1, int(round(2.0 / timeline.bin_seconds)))  # 2 s windows either side
    n = len(activity)
    if n < 2 * k:
        return sorted(bounds.items())
    # Means of the k bins before and after every candidate boundary i in [k, n - k], from running sums.
    i = np.arange(k, n - k + 1)
    run_a = np.concatenate([[0.0], np.cumsum(activity)])
    before = (run_a[i] - run_a[i - k]) / k + STILL_OBJECTS
    after = (run_a[i + k] - run_a[i]) / k + STILL_OBJECTS
    turned = _turned(flow, i, k, STILL_OBJECTS) | _turned(pan, i, k, STILL_CAMERA)  # objects or camera turn
    changed = turned | (np.maximum(before, after) / np.minimum(before, after) >= config.motion_change_ratio)
    taken = sorted(bounds)
    for t in (round(float(j) * timeline.bin_seconds, 3) for j in i[changed]):
        at = bisect.bisect_left(taken, t)  # only the nearest boundaries on either side can be too close
        if all(abs(t - b) >= config.min_segment_seconds for b in taken[max(0, at - 1) : at + 1]):
            bounds[t] = False
            taken.insert(at, t)
    return sorted(bounds.items())


def _turned(vectors: np.ndarray, i: np.ndarray, k: int, still: float) -> np.ndarray:
    """Whether the mean ``(n, 2)`` vector of the ``k`` bins before each ``i`` and of the ``k`` after both move
    (above ``still``) and point more than about 80 degrees apart."""
    run = np.concatenate([np.zeros((1, 2)), np.cumsum(vectors, axis=0)])
    vb, va = (run[i] - run[i - k]) / k, (run[i + k] - run[i]) / k
    nb, na = np.hypot(vb[:, 0], vb[:, 1]), np.hypot(va[:, 0], va[:, 1])
    return (np.minimum(nb, na) > still) & ((vb * va).sum(axis=1) < 0.2 * nb * na)


def summarise_motion(timeline: MotionTimeline, start: float, end: float) -> dict:
    """Mean motion over ``[start, end)``: ``{"motion", "camera_motion", "object_motion", "camera": "still" |
    "pan <direction>", "objects": "still" | "moving <direction>"}`` (with their compass degrees when moving)."""
    return _summarise(timeline, start, end)


def _summarise(timeline: MotionTimeline, start: float, end: float) -> dict:
    b = timeline.bin_seconds
    lo = int(start / b)
    sl = slice(lo, min(max(lo + 1, int(np.ceil(end / b))), timeline.n_bins))
    if sl.start >= sl.stop:
        return {"motion": 0.0, "camera": "still", "objects": "still"}
    cdx, cdy = float(np.mean(timeline.camera_dx[sl])), float(np.mean(timeline.camera_dy[sl]))
    frac = np.asarray(timeline.local_fraction[sl])
    ldx = float(np.dot(frac, timeline.local_dx[sl]) / max(frac.sum(), 1e-9))
    ldy = float(np.dot(frac, timeline.local_dy[sl]) / max(frac.sum(), 1e-9))
    camera_motion, object_motion = float(np.hypot(cdx, cdy)), float(np.hypot(ldx, ldy) * frac.mean() ** 0.5)
    out = {
        "motion": round(float(np.mean(timeline.magnitude[sl])), 6),
        "camera_motion": round(camera_motion, 6),
        "object_motion": round(object_motion, 6),
        "camera": "still",
        "objects": "still",
    }
    if camera_motion > STILL_CAMERA:  # content moving left means the camera pans right
        out.update(camera=f"pan {direction_label(-cdx, -cdy)}", camera_degrees=direction_degrees(-cdx, -cdy))
    if object_motion > STILL_OBJECTS:
        out.update(objects=f"moving {direction_label(ldx, ldy)}", objects_degrees=direction_degrees(ldx, ldy))
    return out


def _is_static(timeline: MotionTimeline, start: float, end: float) -> bool:
    s = _summarise(timeline, start, end)
    return s["camera"] == "still" and s["objects"] == "still"


def build_segments(
    timeline: MotionTimeline, cuts: list[float], keyframe_seconds: list[float], duration: float, config: IngestConfig
) -> list[Segment]:
    """Segments covering ``[0, duration)`` contiguously."""
    bounds = _boundaries(timeline, cuts, duration, config)
    spans = []
    for i, (start, is_cut) in enumerate(bounds):
        end = bounds[i + 1][0] if i + 1 < len(bounds) else duration
        if end > start:
            spans.append([start, end, is_cut])
    merged: list[list] = []
    for span in spans:
        # Short non-cut pieces join the previous segment, and so do static stretches that
        # follow a static segment: "nothing moves" twice in a row says nothing new.
        short = (
            span[1] - span[0] < config.min_segment_seconds
            or merged
            and merged[-1][1] - merged[-1][0] < config.min_segment_seconds
        )
        static = merged and _is_static(timeline, *merged[-1][:2]) and _is_static(timeline, *span[:2])
        if merged and not span[2] and (short or static):
            merged[-1][1] = span[1]
        else:
            merged.append(span)
    final: list[tuple[float, float, bool]] = []
    for start, end, is_cut in merged:
        n = int(np.ceil((end - start) / config.max_segment_seconds - 1e-9))
        edges = np.linspace(start, end, n + 1)
        for j in range(n):
            final.append((float(edges[j]), float(edges[j + 1]), is_cut and j == 0))
    kf = np.asarray(keyframe_seconds) if keyframe_seconds else None
    segments = []
    for start, end, is_cut in final:
        summary = _summarise(timeline, start, end)
        key = None
        if kf is not None:
            inside = np.flatnonzero((kf >= start) & (kf < end))
            mid = (start + end) / 2
            pool = inside if len(inside) else np.arange(len(kf))
            key = int(pool[np.argmin(np.abs(kf[pool] - mid))])
        segments.append(
            Segment(
                start_seconds=round(start, 3),
                end_seconds=round(end, 3),
                starts_with_cut=is_cut,
                keyframe=key,
                **summary,
            )
        )
    return segments
