"""Keyframe embeddings of a long video, embedded coarse first and refined where searches land.

A long video's clip index takes its frames from the keyframes (see ``IngestConfig.clip_frames``).
`foveate index` embeds every keyframe. For a fast first answer on a video not indexed yet,
`foveate ask` builds it coarse (``IngestConfig.embed_max_frames``): at most that many keyframes
embedded, the first keyframe after each scene cut the overview found and keyframes evenly spread
between. A clip whose keyframe is not embedded yet takes the embedding of the nearest one that
is. A search then embeds the keyframes behind its best clips (:meth:`KeyframeEmbeddings.missing`:
theirs and those their coarse embedding stands for) and searches again, so the clips it returns
are scored on their own frames. What a search embeds is written back to the cache, merged under
a lock with what other processes wrote meanwhile; an ingest that wants every keyframe completes
the index in place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import av
import numpy as np

from foveate.memory.atomic import atomic_path
from foveate.memory.frames import to_rgb
from foveate.memory.probe import VideoInfo

logger = logging.getLogger(__name__)

TIMES_FILE, VECTORS_FILE = "keyframes.npy", "keyframe_embeddings.npy"


def coarse_keyframe_picker(
    duration_seconds: float, max_frames: int, cuts_seconds: Sequence[float]
) -> Callable[[float], bool]:
    """A predicate over keyframe times in decoding order: embed this keyframe now?

    Up to half the budget goes to the first keyframe at or after each cut (in time order), the
    rest to keyframes at least ``duration / (budget - cut slots)`` after the last one taken.
    """
    cuts = np.sort(np.asarray(cuts_seconds, np.float64))
    cut_slots = min(len(cuts), max_frames // 2)
    spacing = duration_seconds / max(1, max_frames - cut_slots)
    state = {"last": -np.inf, "prev": -np.inf, "cut_taken": 0}
    tol = 1e-3

    def take(t: float) -> bool:
        i = np.searchsorted(cuts, state["prev"] + tol, side="right")
        after_cut = i < len(cuts) and cuts[i] <= t + tol and state["cut_taken"] < cut_slots
        state["prev"] = t
        if t - state["last"] >= spacing - tol:
            state["last"] = t
            return True
        if after_cut:
            state["cut_taken"] += 1
            state["last"] = t
            return True
        return False

    return take


def pool_samples(samples: np.ndarray, per_clip: int, pooling: str) -> np.ndarray:
    """The clip index's rows ``float32``, L2-normalised, from ``(C * per_clip, D)`` sample embeddings clip by
    clip: each clip's mean (``"mean"``: ``(C, D)``), or every sample its own row (``"max"``: a search scores a
    clip as its best row)."""
    vecs = samples if pooling == "max" else samples.reshape(-1, per_clip, samples.shape[1]).mean(axis=1)
    return (vecs / (np.linalg.norm(vecs, axis=1, keepdims=True) + 1e-12)).astype(np.float32)


class KeyframeEmbeddings:
    """Every keyframe's time ``(K,)`` and embedding ``(K, D)`` (a zero row: not embedded yet), and the
    clips' sample times, from which the clip vectors derive."""

    def __init__(self, times: np.ndarray, vectors: np.ndarray, sample_times: np.ndarray, per_clip: int, fps: float):
        self.times = np.asarray(times, np.float64)
        self.vectors = np.asarray(vectors, np.float32)
        if self.vectors.ndim != 2 or len(self.vectors) != len(self.times) or len(self.times) == 0:
            raise ValueError(f"{len(self.times)} keyframe times and vectors of shape {self.vectors.shape}")
        self.per = per_clip
        # the keyframe at or before each sample time (the start of its group of pictures)
        right = np.searchsorted(self.times, np.asarray(sample_times) + 0.5 / max(fps, 1e-3), side="right")
        self.picked = np.clip(right - 1, 0, len(self.times) - 1)

    @property
    def embedded(self) -> np.ndarray:
        """``(K,) bool``: which keyframes have their own embedding."""
        return np.linalg.norm(self.vectors, axis=1) > 0

    def nearest_embedded(self) -> np.ndarray:
        """For each keyframe, the index of the nearest embedded keyframe in time (the earlier on a tie)."""
        have = np.flatnonzero(self.embedded)
        if len(have) == 0:
            raise ValueError("no keyframe is embedded")
        pos = np.searchsorted(self.times[have], self.times, side="left")
        before = have[np.clip(pos - 1, 0, len(have) - 1)]
        after = have[np.clip(pos, 0, len(have) - 1)]
        closer_after = np.abs(self.times[after] - self.times) < np.abs(self.times - self.times[before])
        return np.where(closer_after, after, before)

    def rows(self, pooling: str) -> np.ndarray:
        """The clip index's rows (:func:`pool_samples`) from the embedding behind each sample time: its
        keyframe's, or the nearest embedded one's."""
        return pool_samples(self.vectors[self.nearest_embedded()[self.picked]], self.per, pooling)

    def missing(self, clip_ids: Sequence[int]) -> np.ndarray:
        """Keyframes not embedded yet that the given clips sample, and those that share an embedding
        with them (the same nearest embedded keyframe: the stretch a coarse hit stands for); in the
        order of ``clip_ids`` (best first), each clip's own keyframes before its stretch."""
        nearest = self.nearest_embedded()
        embedded = self.embedded
        order: dict[int, None] = {}
        for clip in clip_ids:
            own = self.picked[int(clip) * self.per : (int(clip) + 1) * self.per]
            stretch = np.flatnonzero(np.isin(nearest, nearest[own]))
            for key in (*own.tolist(), *stretch.tolist()):
                if not embedded[key]:
                    order.setdefault(int(key))
        return np.asarray(list(order), np.int64)

    def clips_of(self, keys: np.ndarray) -> np.ndarray:
        """Clips that sample any of the keyframes ``keys``."""
        slots = np.flatnonzero(np.isin(self.picked, keys))
        return np.unique(slots // self.per)

    def fill_from_nearest(self, keys: np.ndarray) -> None:
        """Give keyframes ``keys`` the embedding of their nearest embedded keyframe, for good (a keyframe
        that cannot be decoded is then not tried again)."""
        self.vectors[keys] = self.vectors[self.nearest_embedded()[keys]]

    def merge(self, other_vectors: np.ndarray) -> None:
        """Take the rows another writer embedded that this one has not."""
        if other_vectors.shape == self.vectors.shape:
            fill = ~self.embedded & (np.linalg.norm(other_vectors, axis=1) > 0)
            self.vectors[fill] = other_vectors[fill]

    def save(self, folder: Path) -> None:
        for name, arr in ((TIMES_FILE, self.times), (VECTORS_FILE, self.vectors)):
            with atomic_path(folder / name) as tmp, open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)

    @staticmethod
    def load_vectors(folder: Path) -> np.ndarray | None:
        """The saved ``(K, D)`` keyframe embeddings of a clip part (zero rows: not embedded), or None."""
        path = folder / VECTORS_FILE
        return np.load(path, allow_pickle=False) if path.exists() else None

    @classmethod
    def load(cls, folder: Path, sample_times: np.ndarray, per_clip: int, fps: float) -> KeyframeEmbeddings | None:
        """The keyframe embeddings saved in a clip part, or None when it has none (decoded clip frames)."""
        if not (folder / TIMES_FILE).exists():
            return None
        times = np.load(folder / TIMES_FILE, allow_pickle=False)
        return cls(times, np.load(folder / VECTORS_FILE, allow_pickle=False), sample_times, per_clip, fps)


SEEK_EACH_MAX = 16  # more keyframes wanted than this: one pass over the span they cover beats a seek each


def decode_keyframes(
    info: VideoInfo, times: Sequence[float], size: tuple[int, int], seek_each_max: int = SEEK_EACH_MAX
) -> list[np.ndarray | None]:
    """The keyframes shown at ``times`` (each a keyframe's own time: the first keyframe at or after it),
    as ``(H, W, 3)`` RGB of ``size``; None where a keyframe cannot be decoded. Up to ``seek_each_max``
    times: one seek and one keyframe decoded each (a search's few); more (completing an index): one
    seek to the earliest and the keyframes decoded in order up to the latest."""
    wanted = [float(t) for t in times]
    out: list[np.ndarray | None] = [None] * len(wanted)
    with av.open(info.path, metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        groups = [[i] for i in range(len(wanted))] if len(wanted) <= seek_each_max else [np.argsort(wanted).tolist()]
        for group in groups:
            try:
                _decode_in_order(container, stream, info, wanted, group, size, out)
            except av.FFmpegError as exc:
                missed = [wanted[i] for i in group if out[i] is None]
                logger.warning("%s: cannot decode the keyframes at %s s (%s)", info.path, _times_text(missed), exc)
    return out


def _decode_in_order(container, stream, info: VideoInfo, wanted, order: list[int], size, out) -> None:
    """Seek to ``wanted[order[0]]`` and fill ``out[i]`` for ``i`` in ``order`` (times ascending) with the first
    keyframe at or after ``wanted[i]``."""
    container.seek(max(0, int(round(wanted[order[0]] / stream.time_base))), stream=stream, backward=True)
    j = 0
    for frame in container.decode(stream):
        if frame.time is None or frame.time < wanted[order[j]] - 1e-3:
            continue
        arr = to_rgb(frame, size, info.rotation_degrees)
        while j < len(order) and frame.time >= wanted[order[j]] - 1e-3:
            out[order[j]] = arr
            j += 1
        if j == len(order):
            return


def _times_text(times: list[float]) -> str:
    shown = ", ".join(f"{t:.2f}" for t in times[:5])
    return shown + (f" and {len(times) - 5} more" if len(times) > 5 else "")
