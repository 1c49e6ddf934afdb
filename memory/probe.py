"""Probe a video file with PyAV: duration, frame rate, size, rotation, codec, streams.

Every FFmpeg failure becomes one of the typed errors in memory/errors.py with a one-line reason.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import av
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from foveate.memory.errors import CorruptVideoError, NoVideoStreamError, VideoOpenError

logger = logging.getLogger(__name__)

_CHUNK = 64 * 1024
_N_CHUNKS = 16
_TIMING_PACKETS = 120


class VideoInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str = Field(description="Absolute path of the file when probed.")
    fingerprint: str = Field(description="Content fingerprint (size + sampled chunk hashes); keys the cache.")
    duration_seconds: float = Field(gt=0, description="Video stream duration, seconds.")
    fps: float = Field(gt=0, description="Average frame rate, frames per second.")
    width: int = Field(gt=0, description="Coded width, pixels (before rotation).")
    height: int = Field(gt=0, description="Coded height, pixels (before rotation).")
    rotation_degrees: int = Field(
        default=0, description="Display rotation to apply, degrees counter-clockwise (0, 90, 180, 270)."
    )
    codec: str = Field(description="Video codec name, e.g. h264, mpeg4, vp8.")
    has_audio: bool = Field(default=False, description="An audio stream is present.")
    variable_frame_rate: bool = Field(
        default=False, description="Frame intervals vary by more than 25% for more than 10% of the first frames."
    )
    subtitle_streams: int = Field(default=0, ge=0, description="Number of subtitle streams in the container.")
    start_seconds: float = Field(
        default=0.0, description="Timestamp of the video stream's first frame; all Foveate times are relative to it."
    )

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) after rotation."""
        return (self.height, self.width) if self.rotation_degrees in (90, 270) else (self.width, self.height)


def fingerprint(path: str | Path) -> str:
    """A content fingerprint: file size plus SHA-256 of evenly sampled 64 KiB chunks (not the path)."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        for off in sorted({int(x) for x in np.linspace(0, max(0, size - _CHUNK), _N_CHUNKS)}):
            f.seek(off)
            h.update(f.read(_CHUNK))
    return h.hexdigest()[:32]


def ffmpeg_reason(exc: Exception) -> str:
    """FFmpeg's own words for a failure, e.g. 'Invalid data found when processing input'."""
    return str(getattr(exc, "strerror", None) or exc).strip() or exc.__class__.__name__


def open_video(path: str | Path) -> av.container.InputContainer:
    """``av.open`` for reading, with FFmpeg errors turned into VideoOpenError."""
    path = Path(path)
    if not path.exists():
        raise VideoOpenError(path, "no such file")
    if path.is_dir():
        raise VideoOpenError(path, "is a directory, not a video file")
    if path.stat().st_size == 0:
        raise VideoOpenError(path, "empty file (0 bytes)")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise VideoOpenError(
            path, f"not a readable video: not a media file, or truncated/damaged ({ffmpeg_reason(exc)})"
        ) from None
    except (OSError, ValueError) as exc:
        raise VideoOpenError(path, f"cannot open ({exc})") from None


def normalise_rotation(degrees: float) -> int:
    """Counter-clockwise degrees snapped to 0, 90, 180 or 270."""
    return int(round(float(degrees) / 90.0)) * 90 % 360


def _first_packets(container, stream, path: Path) -> tuple[list[float], av.VideoFrame | None]:
    """Timestamps (seconds) of the first packets and the first decodable frame."""
    pts: list[float] = []
    first = None
    try:
        for packet in container.demux(stream):
            if packet.pts is not None:
                pts.append(float(packet.pts * stream.time_base))
            if first is None:
                frames = stream.decode(packet)
                first = frames[0] if frames else None
            if len(pts) >= _TIMING_PACKETS and first is not None:
                break
    except av.FFmpegError as exc:
        if first is None:
            raise CorruptVideoError(path, f"no frame could be decoded ({ffmpeg_reason(exc)})") from None
        logger.warning("%s: damaged data near the start (%s)", path, ffmpeg_reason(exc))
    return pts, first


def _variable_rate(pts: list[float]) -> bool:
    if len(pts) < 4:
        return False
    d = np.diff(np.sort(np.asarray(pts)))
    d = d[d > 0]
    if len(d) < 3:
        return False
    med = np.median(d)
    # Containers round timestamps, so a few uneven intervals are normal: call the rate variable
    # only when many intervals are far from the median.
    return bool(np.mean(np.abs(d - med) > 0.25 * med) > 0.1)


def _rotation(stream, first: av.VideoFrame | None) -> int:
    # FFmpeg >= 7 exposes rotation as display-matrix side data (read back as frame.rotation);
    # older muxers wrote a clockwise 'rotate' tag instead.
    if first is not None and first.rotation:
        return normalise_rotation(first.rotation)
    tag = stream.metadata.get("rotate")
    try:
        return normalise_rotation(-float(tag)) if tag is not None else 0
    except ValueError:
        return 0


def _duration(container, stream, fps: float, pts: list[float], start: float) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base - max(0.0, start - (container.start_time or 0) / av.time_base)
    if stream.frames and fps:
        return stream.frames / fps
    return (max(pts) - start) if pts else 0.0


def probe(path: str | Path) -> VideoInfo:
    """Probe ``path``; raises VideoOpenError / NoVideoStreamError / CorruptVideoError with a one-line reason."""
    path = Path(path)
    with open_video(path) as container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams})
            raise NoVideoStreamError(
                path, f"no video stream (streams: {', '.join(kinds) or 'none'}); is it an audio-only file?"
            )
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if not ctx.width or not ctx.height:
            raise VideoOpenError(path, "video stream has no frame size (damaged header)")
        pts, first = _first_packets(container, stream, path)
        if first is None:
            raise CorruptVideoError(path, "no frame could be decoded (truncated or damaged video stream)")
        start = (
            float(stream.start_time * stream.time_base)
            if stream.start_time is not None
            else (min(pts) if pts else 0.0)
        )
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        duration = _duration(container, stream, fps, pts, start)
        if duration <= 0:
            raise CorruptVideoError(path, "cannot determine the video's duration (truncated or damaged file)")
        if fps <= 0:
            fps = (stream.frames / duration) if stream.frames else 25.0
        return VideoInfo(
            path=str(path.resolve()),
            fingerprint=fingerprint(path),
            duration_seconds=duration,
            fps=fps,
            width=ctx.width,
            height=ctx.height,
            rotation_degrees=_rotation(stream, first),
            codec=ctx.name,
            has_audio=bool(container.streams.audio),
            variable_frame_rate=_variable_rate(pts),
            subtitle_streams=len(container.streams.subtitles),
            start_seconds=start,
        )
