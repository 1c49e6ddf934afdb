"""Frame access for tools: frames at given times, or a window at a given rate.

Requested times are grouped into windows; each window costs one seek to the keyframe before it
and a forward decode, never one seek per frame. Arrays are ``(N, H, W, 3) uint8`` RGB with the
longer side at most ``max_side`` and display rotation applied.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import av
import numpy as np

from memory.errors import CorruptVideoError, SeekError, VideoOpenError

logger = logging.getLogger(__name__)

# Times closer than this share one seek: decoding forward is cheaper than seeking again.
GROUP_GAP_SECONDS = 4.0


def _target_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def _rotate(arr: np.ndarray, degrees: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(arr, k=(degrees // 90) % 4)) if degrees else arr


def _groups(times: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(times, kind="stable")
    groups, current = [], [order[0]]
    for a, b in zip(order, order[1:]):
        if times[b] - times[a] > GROUP_GAP_SECONDS:
            groups.append(np.asarray(current))
            current = []
        current.append(b)
    groups.append(np.asarray(current))
    return groups


def frames_at(path: str | Path, times_seconds: Sequence[float], max_side: int = 448,
              duration_seconds: float | None = None, rotation_degrees: int = 0) -> np.ndarray:
    """The frame shown at each requested time (the last frame with pts <= t), in request order."""
    times = np.asarray(times_seconds, dtype=np.float64)
    if times.size == 0:
        return np.zeros((0, max_side, max_side, 3), np.uint8)
    if np.any(times < 0) or (duration_seconds is not None and np.any(times > duration_seconds)):
        bad = times[(times < 0) | (times > (duration_seconds or np.inf))][0]
        raise SeekError(path, f"time {bad:.2f}s is outside the video [0, {duration_seconds or 0:.2f}]")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise VideoOpenError(path, f"cannot open ({exc})") from None
    out: list[np.ndarray | None] = [None] * len(times)
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = stream.time_base
        size = _target_size(stream.codec_context.width, stream.codec_context.height, max_side)
        for group in _groups(times):
            _decode_group(container, stream, tb, times, group, size, out)
    missing = [i for i, f in enumerate(out) if f is None]
    if len(missing) == len(out):
        raise CorruptVideoError(path, "no frame could be decoded at the requested times")
    for i in missing:  # past the last decodable frame (truncated tail): repeat the nearest one
        out[i] = next(f for f in reversed(out[:i]) if f is not None) if any(f is not None for f in out[:i]) else next(f for f in out if f is not None)
    return np.stack([_rotate(f, rotation_degrees) for f in out])


def _decode_group(container, stream, tb, times, group, size, out) -> None:
    first = float(times[group[0]])
    container.seek(max(0, int(first / tb)), stream=stream, backward=True, any_frame=False)
    pending = list(group)  # indices sorted by time
    last = None
    try:
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            while pending and frame.time > times[pending[0]] + 1e-6:
                # The frame on screen at t is the previous one (or this one if none yet).
                out[pending.pop(0)] = last if last is not None else frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
            if not pending:
                break
            last = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
    except av.FFmpegError as exc:
        logger.warning("decoding stopped early (%s)", exc)
    for i in pending:
        if last is not None:
            out[i] = last


def frames_window(path: str | Path, start_seconds: float, end_seconds: float, fps: float, max_side: int = 224,
                  duration_seconds: float | None = None, rotation_degrees: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Frames sampled at ``fps`` in ``[start_seconds, end_seconds)``: ``(times (N,) float64, frames (N,H,W,3) uint8)``."""
    if not end_seconds > start_seconds:
        raise SeekError(path, f"empty window [{start_seconds:.2f}, {end_seconds:.2f})")
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    times = np.arange(start_seconds, end_seconds, 1.0 / fps)
    return times, frames_at(path, times, max_side, duration_seconds, rotation_degrees)
