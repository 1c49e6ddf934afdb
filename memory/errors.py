"""Typed errors for video handling.

Every error carries the path it concerns so the CLI can print one line that names the file and
the problem (``path: problem``) without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class FoveateError(Exception):
    """Base class for every error Foveate raises on purpose."""


class VideoError(FoveateError):
    """A problem with one video file; ``str(err)`` is ``"<path>: <reason>"``."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class VideoOpenError(VideoError):
    """The file is missing, empty, not a media container, or cannot be demuxed."""


class NoVideoStreamError(VideoError):
    """The container opened but holds no video stream (for example an audio-only file)."""


class CorruptVideoError(VideoError):
    """Decoding failed part-way (truncated or damaged stream) and nothing usable came out."""


class SeekError(VideoError):
    """A requested time lies outside the video or the container refused to seek."""


class EmbedderError(FoveateError):
    """The embedder spec is malformed or its weights cannot be loaded (offline, missing dir)."""
