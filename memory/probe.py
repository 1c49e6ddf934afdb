"""Probe a video file with PyAV: duration, frame rate, size, rotation, codec, streams."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import av
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from memory.errors import NoVideoStreamError, VideoOpenError

logger = logging.getLogger(__name__)

_CHUNK = 64 * 1024
_N_CHUNKS = 16


class VideoInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str = Field(description="Absolute path of the file when probed.")
    fingerprint: str = Field(description="Content fingerprint (size + sampled chunk hashes); keys the cache.")
    duration_seconds: float = Field(gt=0, description="Video stream duration, seconds.")
    fps: float = Field(gt=0, description="Average frame rate, frames per second.")
    width: int = Field(gt=0, description="Coded width, pixels (before rotation).")
    height: int = Field(gt=0, description="Coded height, pixels (before rotation).")
    rotation_degrees: int = Field(default=0, description="Display rotation to apply, degrees counter-clockwise (0, 90, 180, 270).")
    codec: str = Field(description="Video codec name, e.g. h264, mpeg4, vp8.")
    has_audio: bool = Field(default=False, description="An audio stream is present.")
    variable_frame_rate: bool = Field(default=False, description="Frame intervals vary by more than 10%.")
    subtitle_streams: int = Field(default=0, ge=0, description="Number of subtitle streams in the container.")

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) after rotation."""
        return (self.height, self.width) if self.rotation_degrees in (90, 270) else (self.width, self.height)


def fingerprint(path: str | Path) -> str:
    """A content fingerprint: file size plus SHA-256 of evenly sampled 64 KiB chunks."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        offsets = sorted({int(x) for x in np.linspace(0, max(0, size - _CHUNK), _N_CHUNKS)})
        for off in offsets:
            f.seek(off)
            h.update(f.read(_CHUNK))
    return h.hexdigest()[:32]


def _rotation(stream: av.video.stream.VideoStream) -> int:
    rot = 0
    meta = stream.metadata.get("rotate")
    if meta is not None:
        try:
            rot = int(float(meta))
        except ValueError:
            rot = 0
    return (-rot) % 360 if rot else 0


def _frame_timing(container: av.container.InputContainer, stream, max_packets: int = 120) -> tuple[bool, float | None]:
    """(variable frame rate?, last seen pts in seconds) from the first packets' timestamps."""
    pts = []
    for packet in container.demux(stream):
        if packet.pts is not None:
            pts.append(float(packet.pts * stream.time_base))
        if len(pts) >= max_packets:
            break
    if len(pts) < 3:
        return False, None
    d = np.diff(np.sort(np.asarray(pts)))
    d = d[d > 0]
    if len(d) < 2:
        return False, None
    med = np.median(d)
    # Containers round timestamps, so a few uneven intervals are normal: call it variable only
    # when many intervals are far from the median.
    return bool(np.mean(np.abs(d - med) > 0.25 * med) > 0.1), max(pts)


def probe(path: str | Path) -> VideoInfo:
    """Probe ``path``; raises VideoOpenError / NoVideoStreamError with a one-line reason."""
    path = Path(path)
    if not path.exists():
        raise VideoOpenError(path, "no such file")
    if path.is_dir():
        raise VideoOpenError(path, "is a directory, not a video file")
    if path.stat().st_size == 0:
        raise VideoOpenError(path, "empty file (0 bytes)")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise VideoOpenError(path, f"not a readable media file ({exc.__class__.__name__}: {getattr(exc, 'strerror', exc)})") from None
    with container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams})
            raise NoVideoStreamError(path, f"no video stream (streams: {', '.join(kinds) or 'none'})")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        width, height = ctx.width, ctx.height
        if not width or not height:
            raise VideoOpenError(path, "video stream has no frame size (damaged header)")
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        if not duration and container.duration:
            duration = container.duration / av.time_base
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        try:
            vfr, last_pts = _frame_timing(container, stream)
        except av.FFmpegError:
            vfr, last_pts = False, None
        if not duration or duration <= 0:
            if stream.frames and fps:
                duration = stream.frames / fps
            elif last_pts:
                duration = last_pts
        if not duration or duration <= 0:
            raise VideoOpenError(path, "cannot determine the video's duration (truncated or damaged file)")
        if fps <= 0:
            fps = (stream.frames / duration) if stream.frames else 25.0
        return VideoInfo(
            path=str(path.resolve()),
            fingerprint=fingerprint(path),
            duration_seconds=duration,
            fps=fps,
            width=width,
            height=height,
            rotation_degrees=_rotation(stream),
            codec=ctx.name,
            has_audio=bool(container.streams.audio),
            variable_frame_rate=vfr,
            subtitle_streams=len(container.streams.subtitles),
        )
