"""dense_sample: many low-resolution frames, tiled into contact sheets to save image tokens."""

from __future__ import annotations

import math

import numpy as np

from foveate.memory.blocks import ContentBlock, image_block, text_block
from foveate.memory.video_memory import VideoMemory

DENSE_MAX_SIDE = 160
SHEET_COLUMNS = 4
SHEET_FRAMES = 8


def _sheet(frames: np.ndarray) -> np.ndarray:
    """Tile ``(N, H, W, 3)`` frames into one ``(rows*H, cols*W, 3)`` image, row-major in time."""
    n, h, w, _ = frames.shape
    cols = min(SHEET_COLUMNS, n)
    rows = math.ceil(n / cols)
    sheet = np.zeros((rows * h, cols * w, 3), np.uint8)
    for i, f in enumerate(frames):
        r, c = divmod(i, cols)
        sheet[r * h : (r + 1) * h, c * w : (c + 1) * w] = f
    return sheet


def dense_sample(memory: VideoMemory, start: float, end: float, fps: float) -> tuple[list[ContentBlock], int]:
    """Frames at ``fps`` over ``[start, end)``, as contact sheets of up to 8 frames
    (read left to right, top to bottom)."""
    times, frames = memory.frames_window(start, end, fps, max_side=DENSE_MAX_SIDE)
    blocks: list[ContentBlock] = [
        text_block(f"dense_sample {start:.1f}-{end:.1f}s at {fps:g} fps: {len(times)} frames")
    ]
    motion = memory.motion_in(start, end)
    if motion is not None:
        source = "motion vectors" if motion["source"] == "motion_vectors" else "frame differences"
        blocks.append(
            text_block(f"motion in this window ({source}): camera {motion['camera']}, objects {motion['objects']}")
        )
    for i in range(0, len(times), SHEET_FRAMES):
        chunk = times[i : i + SHEET_FRAMES]
        blocks.append(text_block("sheet, frames at " + ", ".join(f"{t:.1f}s" for t in chunk)))
        blocks.append(image_block(_sheet(frames[i : i + SHEET_FRAMES])))
    return blocks, len(times)
