"""retrieve: search the clip index (and the transcript) for a text query, or for several at once.

Several queries (``["the red cross", "the blue star"]``) answer "which came first?": the best clips
of each are listed together in time order, each line naming its query, so the first and the last
line say which of the things was seen first and last without comparing numbers across calls.
A query given by option letter is labelled with it (``B. the red cross: c1 ...``).
"""

from __future__ import annotations

from collections.abc import Callable

from foveate.memory.blocks import ContentBlock, image_block, text_block
from foveate.memory.overview import format_time
from foveate.memory.video_memory import ClipHit, VideoMemory
from foveate.tools.handles import ClipHandles


def in_time_order(
    search: Callable[[str, int], list[ClipHit]], queries: list[str], k: int, labels: list[str] | None = None
) -> list[tuple[str, ClipHit]]:
    """(query, hit) for the top ``k`` hits of each query, ordered by start time (then best score first);
    with ``labels``, each query's label in place of the query."""
    found = [(name, hit) for name, q in zip(labels or queries, queries) for hit in search(q, k)]
    return sorted(found, key=lambda qh: (qh[1].start_seconds, -qh[1].score))


def _clip_line(name: str, hit: ClipHit) -> str:
    return (
        f"{name} [{format_time(hit.start_seconds)}-{format_time(hit.end_seconds)}) "
        f"{hit.start_seconds:.1f}-{hit.end_seconds:.1f}s score {hit.score:.3f}"
    )


def _thumbnails(memory: VideoMemory, named: list[tuple[str, ClipHit]]) -> tuple[list[ContentBlock], int]:
    blocks: list[ContentBlock] = []
    shown: set[str] = set()
    for name, hit in named:
        if name not in shown:
            shown.add(name)
            blocks.append(text_block(f"clip {name} ({hit.start_seconds:.1f}-{hit.end_seconds:.1f}s):"))
            blocks.append(image_block(memory.clip_thumbnail(hit.clip_id)))
    return blocks, len(shown)


def retrieve(
    memory: VideoMemory,
    query: str | list[str],
    k: int,
    handles: ClipHandles,
    with_thumbnails: bool = True,
    labels: list[str] | None = None,
) -> tuple[list[ContentBlock], int]:
    """Top-``k`` clips for ``query`` as text lines plus small thumbnails; returns (blocks, frames spent).

    Each clip is named by its handle in ``handles`` (a new one when the episode has not seen it yet).
    With a list of queries, the top ``k`` of each, in time order, each line ``label: handle span score``,
    ``labels`` naming the queries (default: the queries themselves); a clip two queries found is listed
    for each, with one thumbnail; transcripts are not searched.
    """
    if isinstance(query, list):
        found = in_time_order(memory.search, query, k, labels)
        named = [(handles.name(h.start_seconds, h.end_seconds), h) for _, h in found]
        lines = [f"retrieve({len(query)} queries): top {k} of each, in time order"]
        lines += [f"{q}: {_clip_line(name, hit)}" for (q, _), (name, hit) in zip(found, named)]
        blocks, frames = _thumbnails(memory, named) if with_thumbnails else ([], 0)
        return [text_block("\n".join(lines)), *blocks], frames
    hits = memory.search(query, k)
    names = [handles.name(hit.start_seconds, hit.end_seconds) for hit in hits]
    blocks: list[ContentBlock] = []
    lines = [f"retrieve({query!r}): top {len(hits)} clips by similarity, best first"]
    lines += [_clip_line(name, hit) for name, hit in zip(names, hits)]
    if memory.has_transcript:
        for hit in memory.search_transcript(query, min(k, 3)):
            lines.append(f"transcript [{hit.start_seconds:.1f}-{hit.end_seconds:.1f}s): {hit.text}")
    blocks.append(text_block("\n".join(lines)))
    thumbnails, frames = _thumbnails(memory, list(zip(names, hits))) if with_thumbnails else ([], 0)
    return blocks + thumbnails, frames
