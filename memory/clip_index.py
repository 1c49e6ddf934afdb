"""FAISS index over L2-normalised embeddings: inner product is cosine similarity.

Flat (exact) up to ``ivf_threshold`` vectors, IVF (trained, inverted lists) past it. The index
written to disk is always the CPU one; when FAISS sees GPUs, searches run on a GPU clone.
"""

from __future__ import annotations

import logging
from pathlib import Path

import faiss
import numpy as np

from foveate.memory.atomic import atomic_path

logger = logging.getLogger(__name__)

# FAISS warns below ~39 training points per list; IVF probes 1/8 of the lists (recall ~0.95+).
_POINTS_PER_LIST = 39
_PROBE_FRACTION = 8


def _to_gpu(index: faiss.Index) -> faiss.Index:
    if not hasattr(faiss, "index_cpu_to_all_gpus") or faiss.get_num_gpus() <= 0:
        return index
    try:
        return faiss.index_cpu_to_all_gpus(index)
    except (RuntimeError, AttributeError) as exc:  # a CPU-only build can report GPUs but not use them
        logger.warning("GPU FAISS unavailable (%s); searching on the CPU", exc)
        return index


class ClipIndex:
    """``IndexIDMap2`` over ``IndexFlatIP`` (or ``IndexIVFFlat`` with inner product past ``ivf_threshold``)."""

    def __init__(self, index: faiss.Index) -> None:
        self.index = index
        self._search_index = _to_gpu(index)

    def __repr__(self) -> str:
        return f"ClipIndex({len(self)} vectors, dim={self.dim}, {'ivf' if self.is_ivf else 'flat'})"

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray, ivf_threshold: int = 20000) -> ClipIndex:
        """``vectors (N, D) float32`` L2-normalised, ``ids (N,) int64``; IVF when ``N > ivf_threshold``."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if vectors.ndim != 2 or len(vectors) == 0 or len(ids) != len(vectors):
            raise ValueError(f"need (N, D) vectors with N >= 1 and N ids, got {vectors.shape} and {ids.shape}")
        n, dim = vectors.shape
        if n > ivf_threshold:
            nlist = int(max(1, min(4 * np.sqrt(n), n // _POINTS_PER_LIST)))
            base = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            base.train(vectors)
            base.nprobe = max(1, nlist // _PROBE_FRACTION)
            logger.debug("IVF index: %d vectors, %d lists, nprobe %d", n, nlist, base.nprobe)
        else:
            base = faiss.IndexFlatIP(dim)
        index = faiss.IndexIDMap2(base)
        index.add_with_ids(vectors, ids)
        return cls(index)

    @property
    def is_ivf(self) -> bool:
        return isinstance(faiss.downcast_index(self.index.index), faiss.IndexIVF)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` for one ``(D,)`` query: ``(ids (<=k,) int64, scores (<=k,) float32)``, best first."""
        query = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(1, -1))
        if query.shape[1] != self.dim:
            raise ValueError(f"query has {query.shape[1]} dims, the index {self.dim}")
        k = max(1, min(int(k), len(self)))
        scores, ids = self._search_index.search(query, k)
        keep = ids[0] >= 0  # IVF can return fewer than k (-1 padding)
        return ids[0][keep], scores[0][keep]

    def replace(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Give the entries ``ids`` the rows ``vectors[ids]`` (``vectors`` indexed by id)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return
        self.index.remove_ids(ids)
        self.index.add_with_ids(np.ascontiguousarray(vectors[ids], dtype=np.float32), ids)
        self._search_index = _to_gpu(self.index)

    def save(self, path: str | Path) -> None:
        """Write the CPU index via a temp file in the same folder and an atomic rename."""
        with atomic_path(path) as tmp:
            faiss.write_index(self.index, str(tmp))

    @classmethod
    def load(cls, path: str | Path) -> ClipIndex:
        return cls(faiss.read_index(str(path)))
