"""Timed text for a video: a sidecar ``.srt``/``.vtt`` (same stem) or a text subtitle stream.

Cues are searchable two ways at once: cosine similarity of their text embeddings (the clip
embedder's text tower, a second FAISS index) plus a lexical score (the fraction of query words
the cue contains), which also works alone when no embedder is loaded.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from foveate.memory.clip_index import ClipIndex
    from foveate.memory.embedder import ClipEmbedder

logger = logging.getLogger(__name__)

SIDECAR_SUFFIXES = (".srt", ".vtt", ".en.srt", ".en.vtt")
CUES_FILE = "cues.json"
INDEX_FILE = "cues.faiss"
_TIME = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})")
_WORD = re.compile(r"\w+")
_ASS_FIELDS = 8  # an ASS "Dialogue" payload has 8 comma-separated fields before the text


class Cue(BaseModel):
    """One subtitle line shown during ``[start_seconds, end_seconds)``."""

    model_config = ConfigDict(frozen=True)
    start_seconds: float = Field(ge=0, description="Display start, seconds.")
    end_seconds: float = Field(description="Display end (exclusive), seconds.")
    text: str = Field(description="Plain text, markup removed.")


def _seconds(match: re.Match) -> float:
    h, m, s, ms = match.groups()
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000


def _clean(text: str) -> str:
    text = re.sub(r"<[^>]+>|\{[^}]*\}", "", text).replace("\\N", " ").replace("\\n", " ")
    return " ".join(text.split())


def parse_subtitles(text: str) -> list[Cue]:
    """Parse SRT or WebVTT text into cues (tags stripped, empty or zero-length cues dropped)."""
    cues = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\ufeff", "")):
        lines = [ln for ln in block.strip().split("\n") if ln.strip()]
        for i, line in enumerate(lines):
            if "-->" not in line:
                continue
            times = list(_TIME.finditer(line))
            body = _clean(" ".join(lines[i + 1 :]))
            if len(times) >= 2 and body:
                start, end = _seconds(times[0]), _seconds(times[1])
                if end > start:
                    cues.append(Cue(start_seconds=start, end_seconds=end, text=body))
            break
    return sorted(cues, key=lambda c: c.start_seconds)


def sidecar_path(video: str | Path) -> Path | None:
    """``video.srt`` / ``video.vtt`` (or ``.en.`` variants) beside the video, if present."""
    video = Path(video)
    for suffix in SIDECAR_SUFFIXES:
        side = video.with_name(video.stem + suffix)
        if side.is_file():
            return side
    return None


def _subtitle_text(sub) -> str:
    raw = getattr(sub, "dialogue", None) or getattr(sub, "text", None) or b""
    if not raw and getattr(sub, "ass", None):
        raw = (
            sub.ass.split(b",", _ASS_FIELDS)[-1] if isinstance(sub.ass, bytes) else sub.ass.split(",", _ASS_FIELDS)[-1]
        )
    return _clean(raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw))


def read_subtitle_stream(video: str | Path) -> list[Cue]:
    """Cues from the first text subtitle stream of the container (bitmap subtitles give none)."""
    cues = []
    try:
        with av.open(str(video), metadata_errors="ignore") as container:
            if not container.streams.subtitles:
                return []
            stream = container.streams.subtitles[0]
            for packet in container.demux(stream):
                if packet.pts is None or packet.size == 0:
                    continue
                start = float(packet.pts * packet.time_base)
                end = start + (float(packet.duration * packet.time_base) if packet.duration else 2.0)
                for sub in packet.decode():
                    # PyAV < 14 yields subtitle sets holding rects; later versions the rects themselves.
                    for rect in sub if hasattr(sub, "__iter__") else [sub]:
                        text = _subtitle_text(rect)
                        if text:
                            cues.append(
                                Cue(start_seconds=max(0.0, start), end_seconds=max(end, start + 1e-3), text=text)
                            )
    except av.FFmpegError as exc:
        logger.warning("%s: subtitle stream unreadable, no transcript (%s)", video, exc)
    return cues


def load_cues(video: str | Path) -> list[Cue]:
    """Cues from a sidecar file if there is one, else from the container's subtitle stream."""
    side = sidecar_path(video)
    if side is not None:
        return parse_subtitles(side.read_text(encoding="utf-8", errors="replace"))
    return read_subtitle_stream(video)


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


class Transcript:
    """Cues plus (optionally) a FAISS index of their text embeddings."""

    def __init__(self, cues: list[Cue], index: ClipIndex | None = None) -> None:
        self.cues, self.index = cues, index
        self._words = [_words(c.text) for c in cues]

    def __len__(self) -> int:
        return len(self.cues)

    @classmethod
    def build(cls, cues: list[Cue], embedder: ClipEmbedder | None) -> Transcript:
        index = None
        if cues and embedder is not None:
            from foveate.memory.clip_index import ClipIndex

            index = ClipIndex.build(embedder.embed_texts([c.text for c in cues]), np.arange(len(cues)))
        return cls(cues, index)

    def save(self, directory: Path) -> None:
        (directory / CUES_FILE).write_text(json.dumps([c.model_dump() for c in self.cues]))
        if self.index is not None:
            self.index.save(directory / INDEX_FILE)

    @classmethod
    def load(cls, directory: Path) -> Transcript:
        cues = [Cue.model_validate(c) for c in json.loads((directory / CUES_FILE).read_text())]
        index = None
        if (directory / INDEX_FILE).exists():
            from foveate.memory.clip_index import ClipIndex

            index = ClipIndex.load(directory / INDEX_FILE)
        return cls(cues, index)

    def search(self, query: str, k: int, embedder: ClipEmbedder | None = None) -> list[tuple[int, float]]:
        """``(cue index, score)`` best first; score = cosine similarity (if indexed) + word overlap."""
        if not self.cues:
            return []
        words = _words(query)
        scores = np.asarray([len(words & w) / max(1, len(words)) for w in self._words], np.float32)
        semantic = self.index is not None and embedder is not None and self.index.dim == embedder.dim
        if semantic:
            ids, sims = self.index.search(embedder.embed_texts([query])[0], len(self.cues))
            scores[ids] += sims
        order = [int(i) for i in np.argsort(-scores, kind="stable")[: max(0, k)]]
        return [(i, float(scores[i])) for i in order if semantic or scores[i] > 0]
