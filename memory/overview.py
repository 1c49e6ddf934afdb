"""The overview: the controller's first, cheap view of a whole video."""

from __future__ import annotations

import io
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from foveate.memory.atomic import write_atomic
from foveate.memory.blocks import ContentBlock, image_block, text_block
from foveate.memory.config import IngestConfig
from foveate.memory.errors import CorruptVideoError
from foveate.memory.keyframes import CutDetector, ThumbnailWriter
from foveate.memory.motion import MotionScanner, MotionTimeline, TimelineBuilder
from foveate.memory.probe import VideoInfo
from foveate.memory.segments import Segment, build_segments
from foveate.memory.threads import Cancelled, collecting_cycles, map_stoppable

logger = logging.getLogger(__name__)

_KEYFRAMES_TITLE = "Keyframes:"
OVERVIEW_FILE = "overview.json"
# The keyframe thumbnails, JPEG files end to end in one file (one file each cost ~0.8 ms to create here,
# a third of a 60-minute overview); overview.json lists their sizes.
THUMBS_FILE = "thumbs.jpgs"


def format_time(seconds: float) -> str:
    """``m:ss`` below an hour, ``h:mm:ss`` above."""
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class Overview(BaseModel):
    """The controller's first view: segments, motion timeline, cuts and keyframe thumbnails.

    Times are seconds from the first frame; segments are half-open ``[start_seconds, end_seconds)``
    and cover ``[0, duration_seconds)`` contiguously.
    """

    model_config = ConfigDict(frozen=True)

    duration_seconds: float = Field(gt=0)
    width: int = Field(gt=0, description="Display width after rotation.")
    height: int = Field(gt=0, description="Display height after rotation.")
    motion_source: str = Field(description="'motion_vectors' (compressed stream) or 'frame_diff' (fallback).")
    motion_sampling: str = Field(
        default="every_frame",
        description="'after_keyframes': every frame's packet size, motion from a few frames after each keyframe; "
        "'every_frame': every reference frame decoded (short videos, rare keyframes).",
    )
    timeline: MotionTimeline
    cuts_seconds: list[float] = Field(description="Detected scene cuts, seconds.")
    keyframe_seconds: list[float] = Field(description="Times of the keyframe thumbnails.")
    thumbnail_sizes: list[int] = Field(
        default_factory=list,
        description="Byte size of each thumbnail (a JPEG file) in thumbs.jpgs, where they lie end to end, "
        "in keyframe_seconds order.",
    )
    segments: list[Segment]
    _dir: Path | None = PrivateAttr(default=None)
    _jpegs: list[bytes] | None = PrivateAttr(default=None)  # thumbnails not saved yet

    @classmethod
    def assemble(
        cls,
        info: VideoInfo,
        config: IngestConfig,
        timeline: MotionTimeline,
        cuts_seconds: list[float],
        keyframe_seconds: list[float],
        motion_sampling: str,
        thumbnails: list[bytes],
    ) -> Overview:
        """The overview of ``info``'s video from what a scan found (``thumbnails``: a JPEG file per keyframe
        time); segments are built here."""
        w, h = info.display_size
        ov = cls(
            duration_seconds=info.duration_seconds,
            width=w,
            height=h,
            motion_source=timeline.source,
            motion_sampling=motion_sampling,
            timeline=timeline,
            cuts_seconds=cuts_seconds,
            keyframe_seconds=keyframe_seconds,
            thumbnail_sizes=[len(j) for j in thumbnails],
            segments=build_segments(timeline, cuts_seconds, keyframe_seconds, info.duration_seconds, config),
        )
        ov._jpegs = list(thumbnails)
        return ov

    # ---- persistence -------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write ``overview.json`` and ``thumbs.jpgs`` into ``directory``, atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self._jpegs is not None:
            write_atomic(directory / THUMBS_FILE, b"".join(self._jpegs))
        elif self._dir is not None and self._dir.resolve() != directory.resolve():
            write_atomic(directory / THUMBS_FILE, (self._dir / THUMBS_FILE).read_bytes())
        write_atomic(directory / OVERVIEW_FILE, self.model_dump_json().encode())
        self._dir, self._jpegs = directory, None

    @classmethod
    def load(cls, directory: str | Path) -> Overview:
        directory = Path(directory)
        ov = cls.model_validate_json((directory / OVERVIEW_FILE).read_text())
        ov._dir = directory
        return ov

    def thumbnail(self, index: int) -> Image.Image:
        """Keyframe thumbnail ``index`` (of ``keyframe_seconds``), RGB."""
        size = self.thumbnail_sizes[index]
        if self._jpegs is not None:
            data = self._jpegs[index]
        elif self._dir is not None:
            with open(self._dir / THUMBS_FILE, "rb") as f:
                f.seek(sum(self.thumbnail_sizes[:index]))
                data = f.read(size)
        else:
            raise RuntimeError("overview has no thumbnails (build it, or load it from a directory)")
        with Image.open(io.BytesIO(data)) as im:
            return im.convert("RGB")

    # ---- the controller's view ---------------------------------------------------------
    def _rows(self, segments: list[Segment]) -> list[str]:
        return [
            f"{i:>3} [{format_time(s.start_seconds)}-{format_time(s.end_seconds)}) "
            f"{s.start_seconds:.1f}-{s.end_seconds:.1f}s {'cut; ' if s.starts_with_cut else ''}{s.describe_motion()}"
            for i, s in enumerate(segments)
        ]

    def _coarsen(self, max_rows: int) -> list[Segment]:
        """Merge neighbouring segments until at most ``max_rows`` remain."""
        segs = list(self.segments)
        while len(segs) > max(1, max_rows):
            durations = [b.end_seconds - a.start_seconds for a, b in zip(segs, segs[1:])]
            i = int(np.argmin(durations))
            a, b = segs[i], segs[i + 1]
            segs[i : i + 2] = [
                a.model_copy(
                    update={
                        "end_seconds": b.end_seconds,
                        "objects": a.objects if a.objects == b.objects else "mixed motion",
                    }
                )
            ]
        return segs

    def render(self, max_images: int = 16, max_chars: int = 4000) -> list[ContentBlock]:
        """Text table of segments plus evenly spread keyframe thumbnails, within the budget.

        The text grows linearly with the number of segments and is coarsened (neighbouring
        segments merged) until all text blocks together fit ``max_chars``; at most
        ``max_images`` thumbnails, one per segment at most, spread evenly over the video.
        """
        picks = self._pick_keyframes(max_images) if max_images > 0 and self._dir is not None else []
        captions = [f"t={format_time(self.keyframe_seconds[k])} ({self.keyframe_seconds[k]:.1f}s)" for k in picks]
        while picks and sum(map(len, captions)) + len(_KEYFRAMES_TITLE) > max_chars // 4:
            picks, captions = picks[::2], captions[::2]  # captions may use a quarter of the text budget
        budget = max_chars - (sum(map(len, captions)) + len(_KEYFRAMES_TITLE) if picks else 0)
        header = (
            f"Video overview: duration {format_time(self.duration_seconds)} ({self.duration_seconds:.1f}s), "
            f"{self.width}x{self.height}, {len(self.cuts_seconds)} scene cuts, motion from {self.motion_source}.\n"
            f"Segments (index [start-end) m:ss, seconds, motion):"
        )
        segs = list(self.segments)
        rows = self._rows(segs)
        while len(header) + sum(len(r) + 1 for r in rows) > budget and len(segs) > 1:
            segs = self._coarsen(len(segs) * 2 // 3)
            rows = self._rows(segs)
        blocks: list[ContentBlock] = [text_block((header + "\n" + "\n".join(rows))[: max(0, budget)])]
        if picks:
            blocks.append(text_block(_KEYFRAMES_TITLE))
            for k, caption in zip(picks, captions):
                blocks.append(text_block(caption))
                blocks.append(image_block(self.thumbnail(k)))
        return blocks

    def _pick_keyframes(self, max_images: int) -> list[int]:
        reps = [s.keyframe for s in self.segments if s.keyframe is not None]
        reps = sorted(set(reps)) or list(range(len(self.keyframe_seconds)))
        if len(reps) > max_images:
            reps = [reps[int(i)] for i in np.linspace(0, len(reps) - 1, max_images).round()]
        return sorted(set(reps))

    def plot(self, png_path: str | Path, max_thumbs: int = 12) -> None:
        """Motion timeline (camera vs objects), cuts, and a keyframe strip, as a PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        tl = self.timeline
        t = np.arange(tl.n_bins) * tl.bin_seconds
        fig, (ax, strip) = plt.subplots(2, 1, figsize=(12, 4.5), gridspec_kw={"height_ratios": [3, 1.3]})
        ax.plot(t, tl.camera_magnitude(), label="camera motion", lw=1)
        ax.plot(t, tl.local_magnitude(), label="object motion", lw=1)
        for c in self.cuts_seconds:
            ax.axvline(c, color="red", lw=0.8, ls="--")
        for s in self.segments:
            ax.axvspan(
                s.start_seconds,
                s.end_seconds,
                color="grey",
                alpha=0.06 if s.keyframe is None or s.keyframe % 2 else 0.12,
            )
        ax.set_xlim(0, self.duration_seconds)
        ax.set_ylabel("displacement / diagonal per frame")
        ax.set_title(
            f"{len(self.segments)} segments, {len(self.cuts_seconds)} cuts (red), source: {self.motion_source}"
        )
        ax.legend(loc="upper right", fontsize=8)
        strip.axis("off")
        picks = self._pick_keyframes(max_thumbs) if self.thumbnail_sizes else []
        for j, k in enumerate(picks):
            sub = strip.inset_axes([j / max(len(picks), 1), 0, 1 / max(len(picks), 1) * 0.95, 1])
            sub.imshow(self.thumbnail(k))
            sub.set_title(format_time(self.keyframe_seconds[k]), fontsize=7)
            sub.axis("off")
        fig.tight_layout()
        fig.savefig(png_path, dpi=100)
        plt.close(fig)

    def summary(self) -> dict:
        return {
            "duration_s": self.duration_seconds,
            "motion_source": self.motion_source,
            "cuts": self.cuts_seconds,
            "segments": [s.model_dump() for s in self.segments],
        }


# Ranges shorter than this are not worth a thread of their own (each re-decodes up to one GOP
# before its start, and short videos are fast anyway).
MIN_RANGE_SECONDS = 60.0


@dataclass
class _RangeScan:
    """The overview state of one time range, scanned by one thread."""

    scanner: MotionScanner
    builder: TimelineBuilder
    cuts: CutDetector
    thumbs: ThumbnailWriter
    error: str | None = None


def scan_ranges(
    duration_seconds: float, bin_seconds: float, workers: int, min_range_seconds: float = MIN_RANGE_SECONDS
) -> list[tuple[float, float]]:
    """Split ``[0, duration)`` into at most ``workers`` ranges of at least ``min_range_seconds``, on bin edges."""
    n = max(1, min(workers, int(duration_seconds // max(min_range_seconds, bin_seconds))))
    edges = [0.0] + [round(duration_seconds * k / n / bin_seconds) * bin_seconds for k in range(1, n)] + [math.inf]
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


def build_overview(
    path: str | Path,
    info: VideoInfo,
    config: IngestConfig,
    out_dir: str | Path,
    progress: Callable[[float], None] | None = None,
    min_range_seconds: float = MIN_RANGE_SECONDS,
) -> Overview:
    """Build the overview of ``path`` and save it (``overview.json`` + ``thumbs.jpgs``) into ``out_dir``.

    Every frame's packet size and picture type come from one demux pass, which also decodes each
    keyframe and a few frames after it (:mod:`foveate.memory.sampled`). Short videos and videos whose
    keyframes are rare are scanned frame by frame instead (``_build_full_scan``), which is what
    ``Overview.motion_sampling`` records. ``progress`` is called with the fraction done (0..1).
    """
    if info.duration_seconds < config.full_scan_below_seconds:
        logger.debug("%s: full scan (%.1fs is short)", path, info.duration_seconds)
        return _build_full_scan(path, info, config, out_dir, progress, min_range_seconds)
    from foveate.memory.sampled import sample_frames
    from foveate.memory.sampled_overview import build_sampled_overview  # it builds an Overview, defined here

    ranges = scan_ranges(info.duration_seconds, config.bin_seconds, config.decode_threads, min_range_seconds)
    table, frames, spikes = sample_frames(path, info, config, ranges, config.cut_size_ratio, progress)
    gops = np.diff(np.append(table.time_seconds[table.is_key], info.duration_seconds))
    typical_gop = float(np.median(gops)) if len(gops) else math.inf
    if typical_gop > config.full_scan_gop_seconds:
        # Keyframes this rare leave the motion unmeasured for too long: decode every frame after all.
        logger.debug("%s: full scan (keyframes every %.1fs)", path, typical_gop)
        return _build_full_scan(path, info, config, out_dir, progress, min_range_seconds)
    return build_sampled_overview(path, info, config, Path(out_dir), table, frames, spikes, progress)


def _build_full_scan(
    path: str | Path,
    info: VideoInfo,
    config: IngestConfig,
    out_dir: str | Path,
    progress: Callable[[float], None] | None = None,
    min_range_seconds: float = MIN_RANGE_SECONDS,
) -> Overview:
    """Scan the video once and save the overview (``overview.json`` + ``thumbs.jpgs``) into ``out_dir``.

    With ``config.decode_threads`` > 1 a long video is split into that many time ranges (each at
    least ``min_range_seconds``) scanned in parallel threads, then merged in time order.
    ``progress`` is called with the fraction done (0..1) about once per second of video per thread.
    """
    out_dir = Path(out_dir)
    ranges = scan_ranges(info.duration_seconds, config.bin_seconds, config.decode_threads, min_range_seconds)
    done = [0.0] * len(ranges)
    lock = threading.Lock()

    def scan(k: int, stop: threading.Event) -> _RangeScan:
        start, end = ranges[k]
        part = _RangeScan(
            scanner=MotionScanner(path, info, config, start_seconds=start, end_seconds=end),
            builder=TimelineBuilder(config.bin_seconds),
            cuts=CutDetector(config, min_time_seconds=0.5 / info.fps),
            thumbs=ThumbnailWriter(info, config),
        )
        reported = start
        try:
            for sample in part.scanner:
                if stop.is_set():
                    raise Cancelled
                part.builder.add_intra(sample.time_seconds, sample.intra_fraction)
                if sample.motion is not None:
                    part.builder.add(sample.motion)
                part.thumbs.offer(sample, part.cuts.update(sample))
                if progress is not None and sample.time_seconds - reported >= 1.0:
                    with lock:
                        done[k] = sample.time_seconds - start
                        reported = sample.time_seconds
                        progress(min(1.0, max(0.0, sum(done) / info.duration_seconds)))
        except (CorruptVideoError, av.FFmpegError) as exc:
            if k == 0:
                raise
            part.error = str(exc)  # a later range of a damaged file: keep what the earlier ones saw
        return part

    with collecting_cycles():
        parts = map_stoppable(scan, range(len(ranges)), "overview-scan")
    builder, cuts_seconds, keyframe_seconds, jpegs = _merge(parts, config)
    first = parts[0].scanner
    if any(p.error for p in parts):
        bad = next(p for p in parts if p.error)
        logger.warning(
            "%s: could not decode from %.1fs (%s); the file is probably truncated",
            path,
            bad.scanner.start_seconds,
            bad.error,
        )
    timeline = builder.build(info.duration_seconds, first.source)
    ov = Overview.assemble(info, config, timeline, cuts_seconds, keyframe_seconds, "every_frame", jpegs)
    ov.save(out_dir)
    logger.debug(
        "%s: %d frames decoded in %d ranges, %d cuts, %d segments",
        path,
        sum(p.scanner.decoded for p in parts),
        len(parts),
        len(ov.cuts_seconds),
        len(ov.segments),
    )
    if progress is not None:
        progress(1.0)
    return ov


def _merge(
    parts: list[_RangeScan], config: IngestConfig
) -> tuple[TimelineBuilder, list[float], list[float], list[bytes]]:
    """Join per-range results in time order: bins, cuts (min gap kept across joins), thumbnails."""
    builder = TimelineBuilder(config.bin_seconds)
    cuts: list[float] = []
    times: list[float] = []
    jpegs: list[bytes] = []
    for part in parts:
        builder.merge(part.builder)
        for c in part.cuts.cuts_seconds:
            if not cuts or c - cuts[-1] >= config.min_cut_gap_seconds:
                cuts.append(c)
        times += part.thumbs.times_seconds
        jpegs += part.thumbs.jpegs
    return builder, cuts, times, jpegs
