"""zoom: a few high-resolution frames spread over a window."""

from __future__ import annotations

import numpy as np

from foveate.memory.blocks import ContentBlock, image_block, text_block
from foveate.memory.video_memory import VideoMemory

ZOOM_MAX_SIDE = 448


def zoom(memory: VideoMemory, start: float, end: float, num_frames: int) -> tuple[list[ContentBlock], int]:
    """``num_frames`` frames evenly inside ``[start, end)`` at high resolution."""
    times = start + (np.arange(num_frames) + 0.5) * (end - start) / num_frames
    frames = memory.frames_at(times, max_side=ZOOM_MAX_SIDE)
    blocks: list[ContentBlock] = [text_block(f"zoom {start:.1f}-{end:.1f}s: {num_frames} frames")]
    for t, f in zip(times, frames):
        blocks.append(text_block(f"t={t:.1f}s"))
        blocks.append(image_block(f))
    return blocks, num_frames
