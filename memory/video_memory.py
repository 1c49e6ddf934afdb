"""VideoMemory: the overview, the clip index, the transcript and frame access for one video.

``ingest`` builds (or finds in the cache) three independent parts: the overview (compressed-stream
scan), the clip index (OpenCLIP embeddings of ``clip_seconds`` windows, sampled in one sequential
decoding pass) and the transcript (sidecar or subtitle stream). See :mod:`memory.cache`.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from foveate.memory import frames as _frames
from foveate.memory.atomic import atomic_path, write_atomic
from foveate.memory.cache import cache_root as _cache_root
from foveate.memory.cache import load_part
from foveate.memory.config import IngestConfig
from foveate.memory.embedder import DEFAULT_EMBEDDER, ClipEmbedder, embedder_cache_key, load_embedder
from foveate.memory.errors import CorruptVideoError, EmbedderError
from foveate.memory.keyframe_embeddings import (
    KeyframeEmbeddings,
    coarse_keyframe_picker,
    decode_keyframes,
    pool_samples,
)
from foveate.memory.overview import Overview, build_overview
from foveate.memory.probe import VideoInfo, probe
from foveate.memory.transcript import Transcript, load_cues, sidecar_path

if TYPE_CHECKING:  # faiss is imported with the clip index, so an overview alone never loads it
    from foveate.memory.clip_index import ClipIndex

logger = logging.getLogger(__name__)

Progress = Callable[[str, float], None]  # (stage, fraction done in [0, 1])
CLIP_THUMB_SIDE = 96  # retrieval previews; zoom gives the detail
CLIPS_FILE, EMBEDDINGS_FILE, INDEX_FILE, THUMBS_DIR = "clips.json", "embeddings.npy", "index.faiss", "clip_thumbs"
REFINE_POOL = 3  # each refinement embeds the keyframes behind the top k * REFINE_POOL clips, best first,
REFINE_MAX_FRAMES = 32  # and a search embeds at most this many keyframes in all
REFINE_ROUNDS = 4  # searches refined at most this many times (each embeds the unembedded keyframes of its hits)


class Clip(BaseModel):
    """One window ``[start_seconds, end_seconds)`` of the clip index."""

    model_config = ConfigDict(frozen=True)
    clip_id: int = Field(ge=0, description="Row of the clip in the index, 0-based in time order.")
    start_seconds: float = Field(ge=0, description="Window start, seconds.")
    end_seconds: float = Field(description="Window end (exclusive), seconds.")


class ClipHit(BaseModel):
    """A retrieved span ``[start_seconds, end_seconds)`` with its similarity score."""

    model_config = ConfigDict(frozen=True)
    clip_id: int = Field(description="Clip id (source 'clip') or transcript cue number (source 'transcript').")
    start_seconds: float
    end_seconds: float
    score: float = Field(description="Cosine similarity (plus word overlap for transcript hits); higher is better.")
    source: str = Field(default="clip", description="'clip' (visual index) or 'transcript'.")
    text: str | None = Field(default=None, description="The cue text for transcript hits.")


def clip_windows(duration_seconds: float, clip_seconds: float) -> list[Clip]:
    """Consecutive windows of ``clip_seconds`` covering ``[0, duration_seconds)``; the last may be shorter."""
    n = max(1, int(np.ceil(duration_seconds / clip_seconds - 1e-9)))
    return [
        Clip(
            clip_id=i,
            start_seconds=round(i * clip_seconds, 3),
            end_seconds=round(min(duration_seconds, (i + 1) * clip_seconds), 3),
        )
        for i in range(n)
    ]


def _sample_times(clips: list[Clip], per_clip: int) -> np.ndarray:
    """``per_clip`` times evenly inside each clip (centres of equal sub-windows), in time order."""
    return np.asarray(
        [
            c.start_seconds + (j + 0.5) * (c.end_seconds - c.start_seconds) / per_clip
            for c in clips
            for j in range(per_clip)
        ],
        np.float64,
    )


class _ClipAccumulator:
    """Collects sampled frames, embeds them in batches and keeps each sample's vector (bounded memory)."""

    def __init__(self, n_clips: int, per_clip: int, embedder: ClipEmbedder, thumbs_dir: Path, thumb_side: int) -> None:
        self.per, self.embedder = per_clip, embedder
        self.samples = np.zeros((n_clips * per_clip, embedder.dim), np.float32)
        self.filled = np.zeros(n_clips * per_clip, bool)
        self.batch: list[np.ndarray] = []
        self.slots: list[int] = []
        self.thumbs_dir, self.thumb_side = thumbs_dir, thumb_side
        thumbs_dir.mkdir(parents=True, exist_ok=True)

    def add(self, slot: int, frame: np.ndarray) -> None:
        clip = slot // self.per
        own = slice(clip * self.per, (clip + 1) * self.per)
        if not self.filled[own].any() and not any(s // self.per == clip for s in self.slots):
            im = Image.fromarray(frame)
            im.thumbnail((self.thumb_side, self.thumb_side))
            im.save(self.thumbs_dir / f"{clip:06d}.jpg", quality=85)
        self.batch.append(frame)
        self.slots.append(slot)
        if len(self.batch) >= self.embedder.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        self.samples[self.slots] = self.embedder.embed_images(np.stack(self.batch))
        self.filled[self.slots] = True
        self.batch.clear()
        self.slots.clear()

    def rows(self, pooling: str) -> np.ndarray:
        """The clip index's rows (:func:`pool_samples`). A clip's mean is over its decoded samples; past a
        truncated end, a clip (or, under max pooling, a sample) takes the last one decoded before it."""
        if pooling == "max":
            return pool_samples(self.samples[_last_filled(self.filled)], self.per, pooling)
        clips = self.filled.reshape(-1, self.per).any(axis=1)
        sums = self.samples.reshape(len(clips), self.per, -1).sum(axis=1)[_last_filled(clips)]
        return pool_samples(sums, 1, pooling)


def _last_filled(filled: np.ndarray) -> np.ndarray:
    """For each position, the last filled one at or before it (the first filled one before any)."""
    last = np.maximum.accumulate(np.where(filled, np.arange(len(filled)), -1))
    return np.where(last < 0, np.argmax(filled), last)


def embed_clips(
    info: VideoInfo,
    clips: list[Clip],
    embedder: ClipEmbedder,
    config: IngestConfig,
    thumbs_dir: Path,
    progress: Callable[[float], None] | None = None,
    cuts_seconds: Sequence[float] = (),
) -> tuple[np.ndarray, KeyframeEmbeddings | None]:
    """The clip index's rows ``float32`` (``(C, D)``, or ``(C * frames_per_clip, D)`` under
    ``clip_pooling="max"``: :func:`pool_samples`), and the keyframe embeddings they derive from when the
    frames came from the keyframes (None when they were decoded).

    See ``IngestConfig.clip_frames``: a long video with regular keyframes has only its keyframes
    decoded (:func:`_embed_from_keyframes`, at most ``embed_max_frames`` of them embedded, the
    first after each of ``cuts_seconds`` among them); otherwise :func:`_embed_from_decoded`. In
    "auto" mode the keyframe pass checks the keyframe spacing as it goes and hands over to the
    decoded pass when they are too far apart.
    """
    mode = config.clip_frames
    if mode == "auto" and info.duration_seconds < config.keyframe_clips_min_seconds:
        mode = "decoded"
    if mode != "decoded":
        gap = config.keyframe_clips_max_gap_seconds if mode == "auto" else None
        keyframes = _embed_from_keyframes(info, clips, embedder, config, thumbs_dir, progress, gap, cuts_seconds)
        if keyframes is not None:
            return keyframes.rows(config.clip_pooling), keyframes
        logger.info("%s: keyframes more than %.0fs apart: clip frames decoded instead", info.path, gap)
    return _embed_from_decoded(info, clips, embedder, config, thumbs_dir, progress), None


def _embed_from_decoded(
    info: VideoInfo,
    clips: list[Clip],
    embedder: ClipEmbedder,
    config: IngestConfig,
    thumbs_dir: Path,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """The clip index's rows from ONE sequential decoding pass (no per-clip seeks).

    Frames are decoded in order with frame threading (no motion vectors are needed here),
    non-reference frames skipped, and only the frames nearest the sample times are converted to
    small RGB arrays; they go to the embedder in batches and are averaged per clip (or, under
    ``clip_pooling="max"``, kept one row each).
    """
    times = _sample_times(clips, config.frames_per_clip)
    acc = _ClipAccumulator(len(clips), config.frames_per_clip, embedder, thumbs_dir, CLIP_THUMB_SIDE)
    half_frame = 0.5 / max(info.fps, 1e-3)
    nxt = 0
    with av.open(info.path, metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.skip_frame = "NONREF"  # a reference frame within a frame or two is close enough
        size = _frames.target_size(stream.codec_context.width, stream.codec_context.height, config.embed_max_side)
        try:
            for frame in container.decode(stream):
                if frame.time is None or frame.time + half_frame < times[nxt]:
                    continue
                arr = _frames.to_rgb(frame, size, info.rotation_degrees)
                while nxt < len(times) and frame.time + half_frame >= times[nxt]:
                    acc.add(nxt, arr)
                    nxt += 1
                if progress is not None:
                    progress(nxt / len(times))
                if nxt >= len(times):
                    break
        except av.FFmpegError as exc:  # truncated or damaged tail: keep what was decoded
            logger.warning(
                "%s: decoding stopped at %.1fs while embedding (%s)", info.path, times[min(nxt, len(times) - 1)], exc
            )
    acc.flush()
    if not acc.filled.any():
        raise CorruptVideoError(info.path, "no frame could be decoded for the clip index")
    return acc.rows(config.clip_pooling)


def _embed_from_keyframes(
    info: VideoInfo,
    clips: list[Clip],
    embedder: ClipEmbedder,
    config: IngestConfig,
    thumbs_dir: Path,
    progress: Callable[[float], None] | None = None,
    max_gap: float | None = None,
    cuts_seconds: Sequence[float] = (),
) -> KeyframeEmbeddings | None:
    """Keyframe embeddings from the keyframes alone (``skip_frame=NONKEY``, no conversion of anything else).

    Each sample time takes the keyframe at or before it, the start of its group of pictures: with
    the encoder's keyframes at scene cuts, that is the same shot. Every keyframe's time is kept;
    at most ``config.embed_max_frames`` keyframes are converted and embedded, in batches (see
    :mod:`memory.keyframe_embeddings`); a search embeds the others where it lands. Each clip's
    thumbnail comes from the embedded keyframe its first sample uses. None when ``max_gap`` is
    given and the median spacing of the keyframes seen (checked once 16 are in) exceeds it.
    """
    budget = config.embed_max_frames
    take = (lambda t: True) if budget is None else coarse_keyframe_picker(info.duration_seconds, budget, cuts_seconds)
    key_times: list[float] = []
    taken: list[int] = []
    vectors: list[np.ndarray] = []
    thumbs: dict[int, Image.Image] = {}
    batch: list[np.ndarray] = []

    def flush() -> None:
        if batch:
            vectors.append(embedder.embed_images(np.stack(batch)))
            batch.clear()

    with av.open(info.path, metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        size = _frames.target_size(stream.codec_context.width, stream.codec_context.height, config.embed_max_side)
        try:
            for frame in container.decode(stream):
                if frame.time is None or (key_times and frame.time <= key_times[-1]):
                    continue
                key_times.append(float(frame.time))
                if max_gap is not None and len(key_times) == 16 and np.median(np.diff(key_times)) > max_gap:
                    return None
                if progress is not None and info.duration_seconds > 0:
                    progress(min(1.0, frame.time / info.duration_seconds))
                if not take(float(frame.time)):
                    continue
                arr = _frames.to_rgb(frame, size, info.rotation_degrees)
                thumb = Image.fromarray(arr)
                thumb.thumbnail((CLIP_THUMB_SIDE, CLIP_THUMB_SIDE))
                thumbs[len(key_times) - 1] = thumb
                taken.append(len(key_times) - 1)
                batch.append(arr)
                if len(batch) >= embedder.batch_size:
                    flush()
        except av.FFmpegError as exc:  # truncated or damaged tail: keep what was decoded
            logger.warning(
                "%s: decoding stopped after %d keyframes while embedding (%s)", info.path, len(key_times), exc
            )
    flush()
    if not taken:
        raise CorruptVideoError(info.path, "no keyframe could be decoded for the clip index")
    if max_gap is not None and len(key_times) > 1 and np.median(np.diff(key_times)) > max_gap:
        return None
    table = np.zeros((len(key_times), embedder.dim), np.float32)
    table[taken] = np.concatenate(vectors)
    per = config.frames_per_clip
    keyframes = KeyframeEmbeddings(key_times, table, _sample_times(clips, per), per, info.fps)
    _save_clip_thumbs(thumbs_dir, keyframes, range(len(clips)), thumbs)
    return keyframes


def _save_clip_thumbs(
    thumbs_dir: Path,
    keyframes: KeyframeEmbeddings,
    clip_ids: Iterable[int],
    thumbs: dict[int, Image.Image],
    atomic: bool = False,
) -> None:
    """Each clip's thumbnail: its first sample's keyframe, else the nearest one in ``thumbs``
    (``atomic``: each file written beside and renamed, for a folder readers may have open)."""
    thumbs_dir.mkdir(parents=True, exist_ok=True)
    have = np.asarray(sorted(thumbs))
    for clip in clip_ids:
        key = int(keyframes.picked[clip * keyframes.per])
        near = int(have[np.argmin(np.abs(keyframes.times[have] - keyframes.times[key]))])
        buf = io.BytesIO()
        thumbs[key if key in thumbs else near].save(buf, format="JPEG", quality=85)
        path = thumbs_dir / f"{clip:06d}.jpg"
        write_atomic(path, buf.getvalue()) if atomic else path.write_bytes(buf.getvalue())


class VideoMemory:
    """Everything the tools need about one video: see :func:`ingest`."""

    def __init__(
        self,
        info: VideoInfo,
        overview: Overview,
        cache_dir: Path,
        clips: list[Clip],
        index: ClipIndex | None,
        embedder: ClipEmbedder | None,
        clips_dir: Path | None,
        transcript: Transcript | None,
        built_parts: tuple[str, ...] = (),
        config: IngestConfig | None = None,
    ) -> None:
        self.info, self.overview, self.cache_dir, self.clips = info, overview, cache_dir, clips
        self._index, self._embedder, self._clips_dir = index, embedder, clips_dir
        self._transcript = transcript
        self.built_parts = built_parts  # cache parts built by this ingest (empty on a full cache hit)
        self.config = config or IngestConfig()
        self._keyframes: KeyframeEmbeddings | None | bool = False  # False: not read yet

    def __repr__(self) -> str:
        return (
            f"VideoMemory({Path(self.info.path).name!r}, {self.duration_seconds:.1f}s, {len(self.clips)} clips, "
            f"index={'yes' if self._index is not None else 'no'}, transcript={len(self._transcript or [])} cues)"
        )

    @property
    def duration_seconds(self) -> float:
        return self.info.duration_seconds

    @property
    def has_clip_index(self) -> bool:
        return self._index is not None

    @property
    def clip_frame_source(self) -> str | None:
        """Where the clip index's frames came from: "keyframes", "decoded", or None (no index, or an older cache)."""
        if self._clips_dir is None:
            return None
        return json.loads((self._clips_dir / CLIPS_FILE).read_text()).get("frame_source")

    @property
    def has_transcript(self) -> bool:
        return self._transcript is not None and len(self._transcript) > 0

    @property
    def transcript(self) -> Transcript | None:
        """The timed text (sidecar or subtitle stream), or None."""
        return self._transcript

    @property
    def clip_embeddings(self) -> np.ndarray | None:
        """The clip index's rows ``float32`` (memory-mapped), or None without a clip index: ``(C, D)``, one per
        clip, or ``(C * frames_per_clip, D)``, one per sampled frame clip by clip, under ``clip_pooling="max"``."""
        if self._clips_dir is None:
            return None
        return np.load(self._clips_dir / EMBEDDINGS_FILE, allow_pickle=False, mmap_mode="r")

    def _top_clips(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best clips for ``vector`` and their scores, best first. Under max pooling the top
        ``k * rows_per_clip`` rows hold at least ``k`` clips; a clip's first row among them is its best frame."""
        per = self.config.rows_per_clip
        ids, scores = self._index.search(vector, k * per)
        if per == 1:
            return ids, scores
        clips, first = np.unique(ids // per, return_index=True)
        best = np.argsort(first, kind="stable")[:k]
        return clips[best], scores[first[best]]

    def search(self, query: str, k: int = 5, refine: bool = True) -> list[ClipHit]:
        """The ``k`` clips most similar to the text ``query``, best first (empty without a clip index).

        With ``refine`` (and an index built coarse, see :mod:`memory.keyframe_embeddings`), the
        keyframes behind the best ``k * REFINE_POOL`` clips that are not embedded yet are embedded
        now and the search runs again, up to ``REFINE_ROUNDS`` times and ``REFINE_MAX_FRAMES``
        keyframes in all, so the hits returned are scored on their own frames.
        """
        if self._index is None or self._embedder is None:
            return []
        return self.search_embedding(self._embedder.embed_texts([query])[0], k, refine)

    def search_embedding(self, vector: np.ndarray, k: int = 5, refine: bool = True) -> list[ClipHit]:
        """:meth:`search` with a query already embedded (``(D,)``, L2-normalised: a text's or a frame's)."""
        if self._index is None:
            return []
        ids, scores = self._top_clips(vector, k)
        budget = REFINE_MAX_FRAMES if refine else 0
        for _ in range(REFINE_ROUNDS):
            embedded = self._refine(self._top_clips(vector, k * REFINE_POOL)[0], budget) if budget > 0 else 0
            if not embedded:
                break
            budget -= embedded
            ids, scores = self._top_clips(vector, k)
        hits = [
            ClipHit(
                clip_id=int(i),
                start_seconds=self.clips[i].start_seconds,
                end_seconds=self.clips[i].end_seconds,
                score=float(s),
            )
            for i, s in zip(ids, scores)
        ]
        return sorted(hits, key=lambda h: -h.score)

    @property
    def keyframe_embeddings(self) -> KeyframeEmbeddings | None:
        """The keyframe embeddings behind a clip index built from keyframes, else None."""
        if self._keyframes is False:
            self._keyframes = None
            if self._clips_dir is not None:
                times = _sample_times(self.clips, self.config.frames_per_clip)
                self._keyframes = KeyframeEmbeddings.load(
                    self._clips_dir, times, self.config.frames_per_clip, self.info.fps
                )
        return self._keyframes

    def _refine(self, clip_ids: Sequence[int], max_frames: int) -> int:
        """Embed up to ``max_frames`` of the keyframes ``clip_ids`` (best first) sample and of those their
        coarse embeddings stand for, not embedded yet; returns how many."""
        keyframes = self.keyframe_embeddings
        if keyframes is None or self._embedder is None:
            return 0
        missing = keyframes.missing(clip_ids)[:max_frames]
        if len(missing):
            self._embed_keyframes(keyframes, missing)
        return len(missing)

    def complete_clip_index(self, progress: Callable[[float], None] | None = None) -> int:
        """Embed every keyframe a coarse clip index has not embedded yet; returns how many."""
        keyframes = self.keyframe_embeddings
        if keyframes is None or self._embedder is None:
            return 0
        missing = np.flatnonzero(~keyframes.embedded)
        if len(missing):
            self._embed_keyframes(keyframes, missing, progress)
        return len(missing)

    def _embed_keyframes(
        self, keyframes: KeyframeEmbeddings, keys: np.ndarray, progress: Callable[[float], None] | None = None
    ) -> None:
        """Decode (:func:`decode_keyframes`) and embed the keyframes ``keys``, in chunks; then update the clip vectors,
        the index and the cache."""
        size = _frames.target_size(self.info.width, self.info.height, self.config.embed_max_side)  # coded size
        thumbs: dict[int, Image.Image] = {}
        chunk = max(64, self._embedder.batch_size)
        for start in range(0, len(keys), chunk):
            part = keys[start : start + chunk]
            frames = decode_keyframes(self.info, keyframes.times[part], size)
            ok = [i for i, f in enumerate(frames) if f is not None]
            for b in range(0, len(ok), self._embedder.batch_size):
                batch = ok[b : b + self._embedder.batch_size]
                keyframes.vectors[part[batch]] = self._embedder.embed_images(np.stack([frames[i] for i in batch]))
            for i in ok:
                thumbs[int(part[i])] = thumb = Image.fromarray(frames[i])
                thumb.thumbnail((CLIP_THUMB_SIDE, CLIP_THUMB_SIDE))
            failed = part[[i for i, f in enumerate(frames) if f is None]]
            if len(failed):  # undecodable: keep the nearest embedding for good, so it is not tried again
                keyframes.fill_from_nearest(failed)
            if progress is not None:
                progress(min(1.0, (start + len(part)) / len(keys)))
        logger.debug("%s: embedded %d more keyframes", self.info.path, len(keys))
        self._save_refined(keyframes, keyframes.clips_of(keys), thumbs)

    def _save_refined(
        self, keyframes: KeyframeEmbeddings, changed: np.ndarray, thumbs: dict[int, Image.Image]
    ) -> None:
        """Merge with what other processes embedded meanwhile, update the index, write it all back
        (under the part's lock; each file replaced atomically)."""
        from foveate.memory.cache import locked
        from foveate.memory.clip_index import ClipIndex

        folder = self._clips_dir
        try:
            with locked(folder / ".refine.lock"):
                on_disk = KeyframeEmbeddings.load_vectors(folder)
                if on_disk is not None:
                    keyframes.merge(on_disk)
                vecs = keyframes.rows(self.config.clip_pooling)
                old = np.load(folder / EMBEDDINGS_FILE, allow_pickle=False)
                index = ClipIndex.load(folder / INDEX_FILE)
                index.replace(np.flatnonzero(np.any(vecs != old, axis=1)), vecs)
                keyframes.save(folder)
                with atomic_path(folder / EMBEDDINGS_FILE) as tmp, open(tmp, "wb") as fh:
                    np.save(fh, vecs, allow_pickle=False)
                index.save(folder / INDEX_FILE)
                if thumbs:
                    _save_clip_thumbs(folder / THUMBS_DIR, keyframes, changed, thumbs, atomic=True)
            self._index = index
        except OSError as exc:  # a read-only cache still answers, from memory
            logger.warning("%s: cannot save the refined clip index (%s)", folder, exc)
            per = self.config.rows_per_clip
            rows = (changed[:, None] * per + np.arange(per)).ravel()  # the changed clips' rows
            self._index.replace(rows, keyframes.rows(self.config.clip_pooling))

    def search_transcript(self, query: str, k: int = 5) -> list[ClipHit]:
        """Transcript cues matching ``query`` (embedding similarity plus word overlap), best first."""
        if not self.has_transcript:
            return []
        cues = self._transcript.cues
        return [
            ClipHit(
                clip_id=i,
                start_seconds=cues[i].start_seconds,
                end_seconds=cues[i].end_seconds,
                score=s,
                source="transcript",
                text=cues[i].text,
            )
            for i, s in self._transcript.search(query, k, self._embedder)
        ]

    def clip_thumbnail(self, clip_id: int) -> Image.Image:
        """A small frame from clip ``clip_id`` (from the clip index, else the nearest earlier keyframe)."""
        if not 0 <= clip_id < len(self.clips):
            raise IndexError(f"clip_id {clip_id} outside [0, {len(self.clips)})")
        if self._clips_dir is not None:
            for i in range(clip_id, -1, -1):  # clips past a truncated end have no frame: use the last one
                path = self._clips_dir / THUMBS_DIR / f"{i:06d}.jpg"
                if path.exists():
                    with Image.open(path) as im:
                        return im.convert("RGB")
        start = self.clips[clip_id].start_seconds
        keyframes = [i for i, t in enumerate(self.overview.keyframe_seconds) if t <= start + 1e-6] or [0]
        return self.overview.thumbnail(keyframes[-1])

    def frames_at(self, times_seconds: Sequence[float], max_side: int = 448) -> np.ndarray:
        """``(N, H, W, 3) uint8`` frames shown at the given times (rotation applied)."""
        return _frames.frames_at(self.info.path, times_seconds, max_side, **self._frame_kwargs())

    def frames_window(
        self, start_seconds: float, end_seconds: float, fps: float, max_side: int = 224
    ) -> tuple[np.ndarray, np.ndarray]:
        """Frames at ``fps`` in ``[start_seconds, end_seconds)``:
        ``(times (N,) float64, frames (N, H, W, 3) uint8)``."""
        return _frames.frames_window(self.info.path, start_seconds, end_seconds, fps, max_side, **self._frame_kwargs())

    def motion_in(self, start_seconds: float, end_seconds: float) -> dict | None:
        """Motion in ``[start_seconds, end_seconds)`` from every frame's vectors there (decoded now, from the
        keyframe before the window: the overview measures only a few frames per group of pictures).

        Returns :func:`memory.segments.summarise_motion`'s dict plus ``"source"``, or None when the window
        yields no motion (a codec without vectors and a window too short for frame differences).
        """
        from foveate.memory.motion import MotionScanner, TimelineBuilder
        from foveate.memory.segments import summarise_motion

        config = IngestConfig()
        scanner = MotionScanner(
            self.info.path, self.info, config, start_seconds=start_seconds, end_seconds=end_seconds
        )
        builder = TimelineBuilder(config.bin_seconds)
        measured = 0
        for sample in scanner:
            if sample.motion is not None:
                builder.add(sample.motion)
                measured += 1
        if not measured:
            return None
        timeline = builder.build(self.duration_seconds, scanner.source)
        return {**summarise_motion(timeline, start_seconds, end_seconds), "source": scanner.source}

    def _frame_kwargs(self) -> dict:
        """Duration and rotation for the frame readers (saves them probing the file again)."""
        return {"duration_seconds": self.duration_seconds, "rotation_degrees": self.info.rotation_degrees}


def _embedder_key(embedder: ClipEmbedder) -> dict:
    try:
        return embedder_cache_key(embedder.spec)
    except EmbedderError:  # an in-memory model (e.g. mid fine-tuning): its spec must name it uniquely
        return {"spec": embedder.spec}


def _build_clip_part(
    tmp: Path,
    info: VideoInfo,
    clips: list[Clip],
    embedder: ClipEmbedder,
    config: IngestConfig,
    progress: Callable[[float], None] | None,
    cuts_seconds: Sequence[float] = (),
) -> None:
    from foveate.memory.clip_index import ClipIndex

    vecs, keyframes = embed_clips(info, clips, embedder, config, tmp / THUMBS_DIR, progress, cuts_seconds)
    ClipIndex.build(vecs, np.arange(len(vecs)), config.ivf_threshold).save(tmp / INDEX_FILE)
    np.save(tmp / EMBEDDINGS_FILE, vecs, allow_pickle=False)
    if keyframes is not None:
        keyframes.save(tmp)
    source = "decoded" if keyframes is None else "keyframes"
    listed = {"embedder": embedder.spec, "dim": embedder.dim, "frame_source": source, "pooling": config.clip_pooling}
    (tmp / CLIPS_FILE).write_text(json.dumps({**listed, "clips": [c.model_dump() for c in clips]}))


def _load_clip_part(folder: Path, n_clips: int, rows_per_clip: int) -> ClipIndex:
    """The part's index, after checking that its three files agree (a truncated file fails here, not mid-question)."""
    from foveate.memory.clip_index import ClipIndex

    index = ClipIndex.load(folder / INDEX_FILE)
    listed = json.loads((folder / CLIPS_FILE).read_text())["clips"]
    vectors = np.load(folder / EMBEDDINGS_FILE, allow_pickle=False, mmap_mode="r")
    rows = n_clips * rows_per_clip
    if not (len(index) == len(vectors) == rows and len(listed) == n_clips) or vectors.shape[1] != index.dim:
        raise ValueError(
            f"{len(index)} indexed rows, {len(vectors)} embedded rows and {len(listed)} listed clips; "
            f"{rows} rows ({rows_per_clip} a clip) and {n_clips} clips expected"
        )
    return index


def _transcript(
    video_dir: Path, info: VideoInfo, embedder: ClipEmbedder | None, built: list[str]
) -> Transcript | None:
    """The transcript part, keyed by the sidecar's content (or the container's stream) and the embedder."""
    side = sidecar_path(info.path)
    if side is None and not info.subtitle_streams:
        return None
    try:
        source = {"sidecar": hashlib.sha256(side.read_bytes()).hexdigest()} if side else {"stream": info.fingerprint}
    except OSError as exc:
        logger.warning("%s: cannot read subtitles (%s)", side, exc)
        return None
    key = {**source, "embedder": _embedder_key(embedder) if embedder is not None else None}
    transcript, folder, now = load_part(
        video_dir,
        "transcript",
        key,
        lambda tmp: Transcript.build(load_cues(info.path), embedder).save(tmp),
        Transcript.load,
    )
    if now:
        built.append(folder.name)
    return transcript


def ingest(
    path: str | Path,
    *,
    cache_root: str | Path | None = None,
    embedder: str | ClipEmbedder | None = DEFAULT_EMBEDDER,
    config: IngestConfig = IngestConfig(),
    progress: Progress | None = None,
) -> VideoMemory:
    """Probe, scan and (with an embedder) index ``path``, reusing every cached part still valid.

    Args:
        path: the video file.
        cache_root: cache root (default ``$FOVEATE_CACHE``, else ``~/.cache/foveate``).
        embedder: an embedder spec, a loaded :class:`ClipEmbedder`, or None for the overview only.
        config: ingest parameters; only the parts whose fields changed are rebuilt.
        progress: called as ``progress(stage, fraction)`` with stage ``"overview"`` or ``"embed"``.

    Raises:
        VideoError subclasses (one-line ``"path: reason"``) for unreadable videos;
        EmbedderError when the embedder cannot be loaded.
    """
    info = probe(path)
    video_dir = _cache_root(cache_root) / info.fingerprint
    stage = (lambda name: lambda f: progress(name, f)) if progress else (lambda name: None)
    built: list[str] = []
    emb = index = clips_dir = None
    if config.embed and embedder is not None:  # first: a model that cannot load fails before the overview's work
        emb = load_embedder(embedder) if isinstance(embedder, str) else embedder
    overview, ov_dir, now = load_part(
        video_dir,
        "overview",
        config.overview_key(),
        lambda tmp: build_overview(info.path, info, config, tmp, stage("overview")),
        Overview.load,
    )
    built += [ov_dir.name] if now else []
    clips = clip_windows(info.duration_seconds, config.clip_seconds)
    if emb is not None:
        key = {"embedder": _embedder_key(emb), **config.clips_key()}
        index, clips_dir, now = load_part(
            video_dir,
            "clips",
            key,
            lambda tmp: _build_clip_part(tmp, info, clips, emb, config, stage("embed"), overview.cuts_seconds),
            lambda folder: _load_clip_part(folder, len(clips), config.rows_per_clip),
        )
        built += [clips_dir.name] if now else []
    transcript = _transcript(video_dir, info, emb, built)
    if built or not (video_dir / "meta.json").exists():
        _write_meta(video_dir, info, config, emb, ov_dir, clips_dir)
    memory = VideoMemory(info, overview, video_dir, clips, index, emb, clips_dir, transcript, tuple(built), config)
    if config.embed_max_frames is None and memory.complete_clip_index(stage("embed")):  # built coarse before
        memory.built_parts = (*memory.built_parts, clips_dir.name)
    return memory


def _write_meta(
    video_dir: Path,
    info: VideoInfo,
    config: IngestConfig,
    emb: ClipEmbedder | None,
    ov_dir: Path,
    clips_dir: Path | None,
) -> None:
    """A human-readable summary of the entry; each part's own meta.json is what validates it."""
    from foveate.memory.cache import library_versions

    meta = {
        "video": info.model_dump(),
        "config": config.model_dump(),
        "embedder": emb.spec if emb else None,
        "versions": library_versions(),
        "overview_part": ov_dir.name,
        "clips_part": clips_dir.name if clips_dir else None,
    }
    write_atomic(video_dir / "meta.json", json.dumps(meta, indent=2, default=str).encode())
