"""Video memory: decoding, the compressed-stream overview, clip embeddings and their index.

The names below load on first use, so that overview-only users never import torch or faiss;
the ``TYPE_CHECKING`` imports name the same objects for readers and type checkers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from foveate.memory.config import IngestConfig
    from foveate.memory.embedder import DEFAULT_EMBEDDER, ClipEmbedder, load_embedder
    from foveate.memory.video_memory import Clip, ClipHit, VideoMemory, ingest

_EXPORTS = {
    "IngestConfig": "config",
    "ClipEmbedder": "embedder",
    "DEFAULT_EMBEDDER": "embedder",
    "load_embedder": "embedder",
    "Clip": "video_memory",
    "ClipHit": "video_memory",
    "VideoMemory": "video_memory",
    "ingest": "video_memory",
}
__all__ = [
    "DEFAULT_EMBEDDER",
    "Clip",
    "ClipEmbedder",
    "ClipHit",
    "IngestConfig",
    "VideoMemory",
    "ingest",
    "load_embedder",
]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
