"""Frame access for tools: frames at given times, or a window at a given rate.

Requested times are sorted and grouped; each group costs one seek to the keyframe before it and
a forward decode, never one seek per frame. Only the chosen frames are converted to RGB, scaled
by the converter itself. Arrays are ``(N, H, W, 3) uint8`` RGB with display rotation applied
and the longer side at most ``max_side``. Times are seconds from the video's first frame.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

from foveate.memory.errors import CorruptVideoError, SeekError
from foveate.memory.probe import ffmpeg_reason, normalise_rotation, open_video

logger = logging.getLogger(__name__)

# Times closer than this share one seek: decoding forward is cheaper than seeking again.
GROUP_GAP_SECONDS = 4.0


def target_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(w, h) scaled so the longer side is at most ``max_side``, aspect kept, even numbers."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def _groups(times: np.ndarray) -> list[np.ndarray]:
    """Indices of ``times`` in time order, split where consecutive times are far apart."""
    order = np.argsort(times, kind="stable")
    splits = np.flatnonzero(np.diff(times[order]) > GROUP_GAP_SECONDS) + 1
    return np.split(order, splits)


def _stream_bounds(container, stream) -> tuple[float, float]:
    """(start, duration) of the video stream, seconds."""
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    if stream.duration is not None:
        return start, float(stream.duration * stream.time_base)
    return start, (container.duration / av.time_base if container.duration else float("inf"))


def frames_at(
    path: str | Path,
    times_seconds: Sequence[float],
    max_side: int = 448,
    duration_seconds: float | None = None,
    rotation_degrees: int | None = None,
) -> np.ndarray:
    """The decoded frame nearest to each requested time, in request order: ``(N, H, W, 3) uint8``.

    ``duration_seconds`` and ``rotation_degrees`` default to what the file says. Times outside
    ``[0, duration_seconds]`` raise SeekError.
    """
    times = np.asarray(times_seconds, dtype=np.float64).reshape(-1)
    if max_side < 2:
        raise ValueError(f"max_side must be >= 2, got {max_side}")
    with open_video(path) as container:
        if not container.streams.video:
            raise SeekError(path, "no video stream to take frames from")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start, duration = _stream_bounds(container, stream)
        duration = duration_seconds if duration_seconds is not None else duration
        bad = times[~np.isfinite(times) | (times < 0) | (times > duration + 1e-6)]
        if bad.size:
            raise SeekError(path, f"time {bad[0]:.2f}s is outside the video [0, {duration:.2f}]s")
        size = target_size(stream.codec_context.width, stream.codec_context.height, max_side)
        if times.size == 0:
            return np.zeros((0, size[1], size[0], 3), np.uint8)
        out: list[np.ndarray | None] = [None] * len(times)
        for group in _groups(times):
            _decode_group(path, container, stream, start, times, group, size, rotation_degrees, out)
    missing = [i for i, f in enumerate(out) if f is None]
    if len(missing) == len(out):
        raise CorruptVideoError(path, "no frame could be decoded at the requested times")
    if missing:  # past the last decodable frame (truncated tail): repeat the nearest decoded one
        logger.warning("%s: no frame decodable near %.2fs; using the nearest decoded one", path, times[missing[0]])
        have = [j for j, f in enumerate(out) if f is not None]
        for i in missing:
            out[i] = out[min(have, key=lambda j: abs(times[j] - times[i]))]
    return np.stack(out)  # type: ignore[arg-type]


def to_rgb(frame: av.VideoFrame, size: tuple[int, int], rotation_degrees: int | None) -> np.ndarray:
    """``frame`` as ``(H, W, 3) uint8`` RGB scaled to ``size`` by the converter, display rotation applied
    (``rotation_degrees``, else the frame's own)."""
    rot = normalise_rotation(frame.rotation) if rotation_degrees is None else rotation_degrees
    arr = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
    return np.ascontiguousarray(np.rot90(arr, k=rot // 90)) if rot else arr  # rot90 turns counter-clockwise


def _decode_group(path, container, stream, start, times, group, size, rotation_degrees, out) -> None:
    """Seek once to the keyframe before the group's first time, decode forward, keep nearest frames."""
    tb = stream.time_base
    try:
        container.seek(max(0, int((times[group[0]] + start) / tb)), stream=stream, backward=True, any_frame=False)
    except av.FFmpegError as exc:
        raise SeekError(path, f"cannot seek to {times[group[0]]:.2f}s ({ffmpeg_reason(exc)})") from None
    pending = list(group)  # indices in time order
    prev: tuple[float, av.VideoFrame] | None = None
    try:
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            t = float(frame.time) - start
            while pending and t >= times[pending[0]]:
                target = times[pending[0]]
                use = frame if prev is None or abs(t - target) <= abs(prev[0] - target) else prev[1]
                out[pending.pop(0)] = to_rgb(use, size, rotation_degrees)
            if not pending:
                return
            prev = (t, frame)
    except av.FFmpegError as exc:
        logger.warning(
            "%s: decoding stopped near %.2fs (%s)", path, prev[0] if prev else times[group[0]], ffmpeg_reason(exc)
        )
    if prev is not None:
        for i in pending:  # after the last frame: the last frame is the nearest
            out[i] = to_rgb(prev[1], size, rotation_degrees)


def frames_window(
    path: str | Path,
    start_seconds: float,
    end_seconds: float,
    fps: float,
    max_side: int = 224,
    duration_seconds: float | None = None,
    rotation_degrees: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames sampled at ``fps`` in ``[start_seconds, end_seconds)``:
    ``(times (N,) float64, frames (N, H, W, 3) uint8)``."""
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if not end_seconds > start_seconds:
        raise SeekError(path, f"empty window [{start_seconds:.2f}, {end_seconds:.2f})s")
    times = np.arange(start_seconds, end_seconds, 1.0 / fps, dtype=np.float64)
    return times, frames_at(path, times, max_side, duration_seconds, rotation_degrees)
