"""VideoMemory: the overview, the clip index and frame access for one video, cached on disk."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable, Sequence

import av
import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from memory.cache import build_part, cache_root, key_hash
from memory.clip_index import ClipIndex
from memory.config import IngestConfig
from memory.embedder import DEFAULT_EMBEDDER, ClipEmbedder, load_embedder
from memory.errors import CorruptVideoError
from memory.frames import frames_at, frames_window
from memory.overview import Overview, build_overview, write_atomic
from memory.probe import VideoInfo, probe
from memory.transcript import Cue, load_transcript

logger = logging.getLogger(__name__)

Progress = Callable[[str, float], None]  # (stage, fraction done)
THUMB_SIDE = 96


class Clip(BaseModel):
    model_config = ConfigDict(frozen=True)
    clip_id: int
    start_seconds: float
    end_seconds: float


class ClipHit(BaseModel):
    """A retrieved span ``[start_seconds, end_seconds)`` with its similarity score."""

    model_config = ConfigDict(frozen=True)
    clip_id: int
    start_seconds: float
    end_seconds: float
    score: float
    source: str = Field(default="clip", description="'clip' (visual index) or 'transcript'.")
    text: str | None = None


def _clip_windows(duration: float, clip_seconds: float) -> list[Clip]:
    n = max(1, int(np.ceil(duration / clip_seconds - 1e-9)))
    return [Clip(clip_id=i, start_seconds=round(i * clip_seconds, 3), end_seconds=round(min(duration, (i + 1) * clip_seconds), 3)) for i in range(n)]


def _sample_times(clips: list[Clip], per_clip: int) -> np.ndarray:
    return np.asarray([c.start_seconds + (j + 0.5) * (c.end_seconds - c.start_seconds) / per_clip for c in clips for j in range(per_clip)])


def _embed_clips(info: VideoInfo, clips: list[Clip], embedder: ClipEmbedder, config: IngestConfig,
                 progress: Callable[[float], None] | None) -> tuple[np.ndarray, np.ndarray]:
    """One sequential decoding pass; returns (clip embeddings (C, D) float32, thumbnails (C, h, w, 3) uint8)."""
    per = config.frames_per_clip
    times = _sample_times(clips, per)
    sums = np.zeros((len(clips), embedder.dim), np.float32)
    thumbs: list[np.ndarray | None] = [None] * len(clips)
    batch, batch_slots = [], []
    nxt = 0

    def flush() -> None:
        if batch:
            vecs = embedder.embed_images(np.stack(batch))
            for slot, v in zip(batch_slots, vecs):
                sums[slot // per] += v
            batch.clear()
            batch_slots.clear()

    with av.open(info.path, metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.skip_frame = "NONREF"  # the nearest reference frame is close enough
        w, h = stream.codec_context.width, stream.codec_context.height
        s = config.embed_max_side / max(w, h)
        size = (max(2, int(w * s) // 2 * 2), max(2, int(h * s) // 2 * 2))
        try:
            for frame in container.decode(stream):
                if frame.time is None or nxt >= len(times) or frame.time + 0.5 / info.fps < times[nxt]:
                    continue
                arr = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
                if info.rotation_degrees:
                    arr = np.ascontiguousarray(np.rot90(arr, k=info.rotation_degrees // 90))
                while nxt < len(times) and frame.time + 0.5 / info.fps >= times[nxt]:
                    batch.append(arr)
                    batch_slots.append(nxt)
                    if thumbs[nxt // per] is None:
                        thumbs[nxt // per] = np.asarray(Image.fromarray(arr).resize((THUMB_SIDE, max(2, THUMB_SIDE * arr.shape[0] // arr.shape[1]))))
                    nxt += 1
                if len(batch) >= 64:
                    flush()
                    if progress:
                        progress(nxt / len(times))
        except av.FFmpegError as exc:
            logger.warning("%s: decoding stopped early while embedding (%s)", info.path, exc)
    flush()
    if nxt == 0:
        raise CorruptVideoError(info.path, "no frame could be decoded for embedding")
    filled = [t for t in thumbs if t is not None]
    thumbs = [t if t is not None else filled[-1] for t in thumbs]  # clips past a truncated end
    counts = np.bincount(np.arange(nxt) // per, minlength=len(clips)).astype(np.float32)[:, None]
    vecs = np.where(counts > 0, sums / np.maximum(counts, 1), sums[max(0, (nxt - 1) // per)])
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True) + 1e-12
    return vecs.astype(np.float32), np.stack(thumbs)


class VideoMemory:
    """Everything the tools need about one video."""

    def __init__(self, info: VideoInfo, overview: Overview, cache_dir: Path, clips: list[Clip],
                 index: ClipIndex | None, embedder: ClipEmbedder | None, clip_thumbs: np.ndarray | None,
                 cues: list[Cue], cue_index: ClipIndex | None) -> None:
        self.info, self.overview, self.cache_dir, self.clips = info, overview, cache_dir, clips
        self._index, self._embedder, self._thumbs = index, embedder, clip_thumbs
        self._cues, self._cue_index = cues, cue_index

    def __repr__(self) -> str:
        return f"VideoMemory({Path(self.info.path).name!r}, {self.duration_seconds:.1f}s, {len(self.clips)} clips)"

    @property
    def duration_seconds(self) -> float:
        return self.info.duration_seconds

    @property
    def has_clip_index(self) -> bool:
        return self._index is not None

    @property
    def has_transcript(self) -> bool:
        return bool(self._cues)

    def search(self, query: str, k: int = 5) -> list[ClipHit]:
        """Clips most similar to ``query`` text, best first."""
        if self._index is None or self._embedder is None:
            return []
        ids, scores = self._index.search(self._embedder.embed_texts([query])[0], k)
        return [ClipHit(clip_id=int(i), start_seconds=self.clips[i].start_seconds, end_seconds=self.clips[i].end_seconds,
                        score=float(s)) for i, s in zip(ids, scores)]

    def search_transcript(self, query: str, k: int = 5) -> list[ClipHit]:
        """Transcript cues matching ``query``: embedding similarity plus word overlap, best first."""
        if not self._cues:
            return []
        words = set(query.lower().split())
        lexical = np.asarray([len(words & set(c.text.lower().split())) / max(1, len(words)) for c in self._cues], np.float32)
        scores = lexical.copy()
        if self._cue_index is not None and self._embedder is not None:
            ids, sims = self._cue_index.search(self._embedder.embed_texts([query])[0], len(self._cues))
            scores[ids] += sims
        order = np.argsort(-scores)[:k]
        return [ClipHit(clip_id=int(i), start_seconds=self._cues[i].start_seconds, end_seconds=self._cues[i].end_seconds,
                        score=float(scores[i]), source="transcript", text=self._cues[i].text) for i in order]

    def clip_thumbnail(self, clip_id: int) -> Image.Image:
        if self._thumbs is None:
            return self.overview.thumbnail(0)
        return Image.fromarray(np.asarray(self._thumbs[clip_id]))

    def frames_at(self, times_seconds: Sequence[float], max_side: int = 448) -> np.ndarray:
        """``(N, H, W, 3) uint8`` frames at the given times."""
        return frames_at(self.info.path, times_seconds, max_side, self.duration_seconds, self.info.rotation_degrees)

    def frames_window(self, start_seconds: float, end_seconds: float, fps: float, max_side: int = 224) -> tuple[np.ndarray, np.ndarray]:
        """Frames at ``fps`` in ``[start_seconds, end_seconds)``: ``(times (N,), frames (N, H, W, 3) uint8)``."""
        return frames_window(self.info.path, start_seconds, end_seconds, fps, max_side, self.duration_seconds, self.info.rotation_degrees)


def ingest(path: str | Path, *, cache_root_dir: str | Path | None = None, embedder: str | ClipEmbedder | None = DEFAULT_EMBEDDER,
           config: IngestConfig = IngestConfig(), progress: Progress | None = None) -> VideoMemory:
    """Probe, scan and (optionally) embed ``path``, reusing the cache where it is still valid."""
    info = probe(path)
    root = cache_root(cache_root_dir) / info.fingerprint
    stage = (lambda name: (lambda f: progress(name, f))) if progress else (lambda name: None)
    ov_dir, _ = build_part(root, f"overview-{key_hash(config.overview_key())}",
                           lambda tmp: build_overview(info.path, info, config, tmp, stage("overview")))
    overview = Overview.load(ov_dir)
    write_atomic(root / "meta.json", json.dumps({"info": info.model_dump(), "config": config.model_dump()}, indent=2).encode())
    clips = _clip_windows(info.duration_seconds, config.clip_seconds)
    index = thumbs = cue_index = None
    emb = None
    if config.embed and embedder is not None:
        emb = load_embedder(embedder) if isinstance(embedder, str) else embedder
        clips_dir, _ = build_part(root, f"clips-{key_hash([emb.spec, config.clips_key()])}",
                                  lambda tmp: _build_clip_part(tmp, info, clips, emb, config, stage("embed")))
        index = ClipIndex.load(clips_dir / "index.faiss")
        thumbs = np.load(clips_dir / "thumbs.npy", allow_pickle=False, mmap_mode="r")
    cues = load_transcript(info.path)
    if cues and emb is not None:
        cue_index = ClipIndex.build(emb.embed_texts([c.text for c in cues]), np.arange(len(cues)))
    return VideoMemory(info, overview, root, clips, index, emb, thumbs, cues, cue_index)


def _build_clip_part(tmp: Path, info: VideoInfo, clips: list[Clip], emb: ClipEmbedder, config: IngestConfig,
                     progress: Callable[[float], None] | None) -> None:
    vecs, thumbs = _embed_clips(info, clips, emb, config, progress)
    ClipIndex.build(vecs, np.arange(len(clips)), config.ivf_threshold).save(tmp / "index.faiss")
    np.save(tmp / "embeddings.npy", vecs)
    np.save(tmp / "thumbs.npy", thumbs)
    (tmp / "clips.json").write_text(json.dumps({"embedder": emb.spec, "clips": [c.model_dump() for c in clips]}))
