"""Video memory: decoding, the compressed-stream overview, clip embeddings and their index.

Names are imported lazily so that overview-only users never import torch or faiss.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "IngestConfig": "memory.config",
    "ClipEmbedder": "memory.embedder",
    "DEFAULT_EMBEDDER": "memory.embedder",
    "load_embedder": "memory.embedder",
    "Clip": "memory.video_memory",
    "ClipHit": "memory.video_memory",
    "VideoMemory": "memory.video_memory",
    "ingest": "memory.video_memory",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'memory' has no attribute {name!r}")
