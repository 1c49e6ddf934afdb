"""Video memory: decoding, the compressed-stream overview, clip embeddings and their index."""

from memory.config import IngestConfig
from memory.embedder import DEFAULT_EMBEDDER, ClipEmbedder, load_embedder
from memory.video_memory import ClipHit, VideoMemory, ingest

__all__ = ["ClipEmbedder", "ClipHit", "DEFAULT_EMBEDDER", "IngestConfig", "VideoMemory", "ingest", "load_embedder"]
