"""Scene cuts and keyframe thumbnails, decided frame by frame during the motion pass.

Thumbnails come out of the same decoding pass as the motion timeline rather than a second
``skip_frame="NONKEY"`` pass: the motion pass decodes every keyframe anyway, so a second pass
would decode them twice, and it also sees the frames right after cuts (which need not be
keyframes) and can fill long keyframe-less stretches. Only the chosen frames are converted to RGB.
"""

from __future__ import annotations

import io
import math

from PIL import Image

from foveate.memory.config import IngestConfig
from foveate.memory.motion import FrameSample
from foveate.memory.probe import VideoInfo


class CutDetector:
    """A frame starts a new shot when its luma signature jumps far above the change just before it.

    With motion vectors only frames the encoder coded (mostly) intra are candidates, a cut's
    signature: an I-frame placed mid-GOP by the encoder's scene-cut logic, or a predicted frame
    whose blocks found no reference. Camera shifts are discounted before comparing
    (see ``memory.motion.best_shift``), so a fast pan is not a cut.
    """

    def __init__(self, config: IngestConfig, min_time_seconds: float = 0.0) -> None:
        self.config = config
        self.min_time_seconds = min_time_seconds
        self.cuts_seconds: list[float] = []

    def update(self, sample: FrameSample) -> bool:
        if sample.change is None or sample.time_seconds <= self.min_time_seconds:
            return False
        baseline = sample.baseline_change or 0.0
        cfg = self.config
        if sample.change < cfg.cut_min_change or sample.change < cfg.cut_jump_ratio * baseline + 0.02:
            return False
        if self.cuts_seconds and sample.time_seconds - self.cuts_seconds[-1] < cfg.min_cut_gap_seconds:
            return False
        self.cuts_seconds.append(round(sample.time_seconds, 3))
        return True


class ThumbnailWriter:
    """Keeps a JPEG thumbnail for keyframes (at most one per min gap), every cut, and long gaps."""

    def __init__(self, info: VideoInfo, config: IngestConfig) -> None:
        self.info = info
        self.config = config
        self.times_seconds: list[float] = []
        self.jpegs: list[bytes] = []

    def offer(self, sample: FrameSample, is_cut: bool) -> bool:
        since = sample.time_seconds - self.times_seconds[-1] if self.times_seconds else math.inf
        keep = (
            is_cut
            or (sample.is_key and since >= self.config.thumbnail_min_gap_seconds)
            or since >= self.config.thumbnail_max_gap_seconds
        )
        if keep:
            self.jpegs.append(self._jpeg(sample))
            self.times_seconds.append(round(sample.time_seconds, 3))
        return keep

    def _jpeg(self, sample: FrameSample) -> bytes:
        frame = sample.frame
        scale = min(1.0, self.config.thumbnail_max_side / max(frame.width, frame.height))
        w, h = max(2, int(round(frame.width * scale / 2)) * 2), max(2, int(round(frame.height * scale / 2)) * 2)
        img = frame.to_image(width=w, height=h)
        if self.info.rotation_degrees:
            img = img.rotate(self.info.rotation_degrees, expand=True)  # PIL rotates counter-clockwise
        return jpeg_bytes(img)


def jpeg_bytes(img: Image.Image) -> bytes:
    """``img`` as a JPEG file (quality 85), the thumbnails' format."""
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=85)
    return out.getvalue()
