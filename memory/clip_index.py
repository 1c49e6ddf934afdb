"""FAISS index over L2-normalised clip embeddings (inner product = cosine similarity)."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import faiss
import numpy as np

logger = logging.getLogger(__name__)


class ClipIndex:
    """``IndexIDMap2`` over ``IndexFlatIP``, or over an IVF index past ``ivf_threshold`` vectors."""

    def __init__(self, index: faiss.Index) -> None:
        self.index = index
        self._search_index = index
        if faiss.get_num_gpus() > 0:  # search on the GPU; the CPU index is what gets written
            try:
                self._search_index = faiss.index_cpu_to_all_gpus(index)
            except Exception as exc:  # faiss-cpu builds expose the function but cannot use it
                logger.warning("GPU FAISS unavailable (%s); searching on the CPU", exc)

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray, ivf_threshold: int = 20000) -> "ClipIndex":
        """``vectors (N, D) float32`` L2-normalised; ``ids (N,) int64``."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, dim = vectors.shape
        if n > ivf_threshold:
            nlist = int(max(1, min(4 * np.sqrt(n), n // 39)))
            quantizer = faiss.IndexFlatIP(dim)
            base = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            base.train(vectors)
            base.nprobe = max(1, nlist // 8)
        else:
            base = faiss.IndexFlatIP(dim)
        index = faiss.IndexIDMap2(base)
        index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
        return cls(index)

    @property
    def is_ivf(self) -> bool:
        return isinstance(faiss.downcast_index(self.index.index), faiss.IndexIVF)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` for one ``(D,)`` query: ``(ids (k,) int64, scores (k,) float32)``, best first."""
        k = max(1, min(k, len(self)))
        scores, ids = self._search_index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def save(self, path: Path) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        os.close(fd)
        try:
            faiss.write_index(self.index, tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> "ClipIndex":
        return cls(faiss.read_index(str(path)))
