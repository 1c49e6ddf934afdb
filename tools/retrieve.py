"""retrieve: search the clip index (and the transcript) for a text query."""

from __future__ import annotations

from foveate.memory.blocks import ContentBlock, image_block, text_block
from foveate.memory.overview import format_time
from foveate.memory.video_memory import VideoMemory
from foveate.tools.handles import ClipHandles


def retrieve(
    memory: VideoMemory, query: str, k: int, handles: ClipHandles, with_thumbnails: bool = True
) -> tuple[list[ContentBlock], int]:
    """Top-``k`` clips for ``query`` as text lines plus small thumbnails; returns (blocks, frames spent).

    Each clip is named by its handle in ``handles`` (a new one when the episode has not seen it yet).
    """
    hits = memory.search(query, k)
    names = [handles.name(hit.start_seconds, hit.end_seconds) for hit in hits]
    blocks: list[ContentBlock] = []
    lines = [f"retrieve({query!r}): top {len(hits)} clips by similarity, best first"]
    for name, hit in zip(names, hits):
        lines.append(
            f"{name} [{format_time(hit.start_seconds)}-{format_time(hit.end_seconds)}) "
            f"{hit.start_seconds:.1f}-{hit.end_seconds:.1f}s score {hit.score:.3f}"
        )
    if memory.has_transcript:
        for hit in memory.search_transcript(query, min(k, 3)):
            lines.append(f"transcript [{hit.start_seconds:.1f}-{hit.end_seconds:.1f}s): {hit.text}")
    blocks.append(text_block("\n".join(lines)))
    frames = 0
    if with_thumbnails:
        for name, hit in zip(names, hits):
            blocks.append(text_block(f"clip {name} ({hit.start_seconds:.1f}-{hit.end_seconds:.1f}s):"))
            blocks.append(image_block(memory.clip_thumbnail(hit.clip_id)))
            frames += 1
    return blocks, frames
