"""retrieve: search the clip index (and the transcript) for a text query."""

from __future__ import annotations

from foveate.memory.blocks import ContentBlock, image_block, text_block
from foveate.memory.overview import format_time
from foveate.memory.video_memory import VideoMemory


def retrieve(memory: VideoMemory, query: str, k: int, with_thumbnails: bool = True) -> tuple[list[ContentBlock], int]:
    """Top-``k`` clips for ``query`` as text lines plus small thumbnails; returns (blocks, frames spent)."""
    hits = memory.search(query, k)
    blocks: list[ContentBlock] = []
    lines = [f"retrieve({query!r}): top {len(hits)} clips by similarity"]
    for rank, hit in enumerate(hits, 1):
        lines.append(
            f"{rank}. [{format_time(hit.start_seconds)}-{format_time(hit.end_seconds)}) "
            f"{hit.start_seconds:.1f}-{hit.end_seconds:.1f}s score {hit.score:.3f}"
        )
    if memory.has_transcript:
        for hit in memory.search_transcript(query, min(k, 3)):
            lines.append(f"transcript [{hit.start_seconds:.1f}-{hit.end_seconds:.1f}s): {hit.text}")
    blocks.append(text_block("\n".join(lines)))
    frames = 0
    if with_thumbnails:
        for rank, hit in enumerate(hits, 1):
            blocks.append(text_block(f"clip {rank} ({hit.start_seconds:.1f}-{hit.end_seconds:.1f}s):"))
            blocks.append(image_block(memory.clip_thumbnail(hit.clip_id)))
            frames += 1
    return blocks, frames
