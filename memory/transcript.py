"""Timed text from a sidecar subtitle file (``video.srt`` / ``video.vtt``) or a subtitle stream."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import av
from pydantic import BaseModel

logger = logging.getLogger(__name__)

_TIME = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})")


class Cue(BaseModel):
    start_seconds: float
    end_seconds: float
    text: str


def _seconds(match: re.Match) -> float:
    h, m, s, ms = match.groups()
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000


def parse_subtitles(text: str) -> list[Cue]:
    """Parse SRT or WebVTT text into cues (tags stripped)."""
    cues = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        lines = [ln for ln in block.strip().split("\n") if ln.strip()]
        for i, line in enumerate(lines):
            if "-->" in line:
                times = list(_TIME.finditer(line))
                if len(times) >= 2:
                    body = re.sub(r"<[^>]+>", "", " ".join(lines[i + 1:])).strip()
                    start, end = _seconds(times[0]), _seconds(times[1])
                    if body and end > start:
                        cues.append(Cue(start_seconds=start, end_seconds=end, text=body))
                break
    return cues


def load_transcript(video: str | Path) -> list[Cue]:
    """Cues from a sidecar .srt/.vtt beside ``video``, else from its first text subtitle stream."""
    video = Path(video)
    for ext in (".srt", ".vtt", ".en.srt", ".en.vtt"):
        side = video.with_name(video.stem + ext)
        if side.is_file():
            return parse_subtitles(side.read_text(errors="replace"))
    try:
        with av.open(str(video), metadata_errors="ignore") as container:
            if not container.streams.subtitles:
                return []
            stream = container.streams.subtitles[0]
            cues = []
            for packet in container.demux(stream):
                for sub in packet.decode():
                    for rect in getattr(sub, "rects", []) or []:
                        text = getattr(rect, "text", None) or getattr(rect, "ass", b"")
                        text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
                        text = re.sub(r"^.*?,.*?,.*?,.*?,.*?,.*?,.*?,.*?,", "", text).replace("\\N", " ").strip()
                        if text and packet.pts is not None:
                            start = float(packet.pts * stream.time_base)
                            dur = float((packet.duration or 0) * stream.time_base) or 2.0
                            cues.append(Cue(start_seconds=start, end_seconds=start + dur, text=text))
            return cues
    except av.FFmpegError as exc:
        logger.warning("%s: cannot read subtitle stream (%s)", video, exc)
        return []
