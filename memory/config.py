"""Ingest parameters. Changing any field invalidates the parts of the cache that depend on it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Which cached part each field keys: the one list ingest and the tests read. A field in no list keys
# no part (and tests/test_cache.py fails), so a new field cannot serve a stale cache.
CACHE_PARTS: dict[str, frozenset[str]] = {
    "overview": frozenset(
        {
            "bin_seconds",
            "moving_threshold",
            "fallback_side",
            "decode_threads",
            "skip_loop_filter",
            "cut_threshold",
            "cut_min_change",
            "cut_jump_ratio",
            "min_cut_gap_seconds",
            "thumbnail_max_side",
            "thumbnail_min_gap_seconds",
            "thumbnail_max_gap_seconds",
            "min_segment_seconds",
            "max_segment_seconds",
            "motion_change_ratio",
            "motion_sample_frames",
            "keyframe_sample_seconds",
            "keyframe_sample_min_seconds",
            "keyframe_sample_max",
            "full_scan_below_seconds",
            "full_scan_gop_seconds",
            "cut_size_ratio",
            "cut_histogram_distance",
        }
    ),
    "clips": frozenset(
        {
            "clip_seconds",
            "frames_per_clip",
            "clip_pooling",
            "embed_max_side",
            "ivf_threshold",
            "clip_frames",
            "keyframe_clips_min_seconds",
            "keyframe_clips_max_gap_seconds",
        }
    ),
    # Whether to build the clip part at all, and how much of it up front; they change no part's content.
    "switches": frozenset({"embed", "embed_max_frames"}),
}


# Keyframes `foveate ask` embeds before a first answer on a video not indexed yet (IngestConfig.embed_max_frames).
FIRST_ANSWER_MAX_FRAMES = 128


class IngestConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # ---- overview: motion timeline ----------------------------------------------------------
    bin_seconds: float = Field(default=0.5, gt=0, le=10, description="Width of one motion-timeline bin, seconds.")
    moving_threshold: float = Field(
        default=0.002,
        ge=0,
        le=0.1,
        description="Displacement relative to the camera (fraction of the frame diagonal per frame) "
        "above which a block counts as moving.",
    )
    fallback_side: int = Field(
        default=64,
        ge=16,
        le=256,
        description="Longer side of the block-mean luma signature used for frame differences "
        "(fallback motion and cut detection).",
    )
    decode_threads: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Threads in the motion pass: a video of at least a minute per thread is split into "
        "this many time ranges, each decoded by its own thread (slice threading, vectors exactly as exported) "
        "and merged in time order.",
    )
    skip_loop_filter: bool = Field(
        default=True,
        description="Skip the deblocking filter in the motion pass (it changes pixels, not vectors); "
        "thumbnails get slightly blockier.",
    )
    # ---- overview: what is decoded ---------------------------------------------------------
    motion_sample_frames: int = Field(
        default=2,
        ge=0,
        le=64,
        description="Packets decoded after each keyframe (decoding order) for their motion vectors; the rest of "
        "each group of pictures is read from packet sizes only.",
    )
    keyframe_sample_seconds: float = Field(
        default=5.0,
        ge=0,
        le=600,
        description="In a long video (see keyframe_sample_min_seconds), a keyframe less than this after the last "
        "decoded one is not decoded (no thumbnail, no motion after it) unless the colours change across it: then it "
        "is decoded afterwards, to place the cut. 0 decodes every keyframe.",
    )
    keyframe_sample_max: int = Field(
        default=240,
        ge=1,
        le=100_000,
        description="At most about this many keyframes are decoded in the reading pass of a long video: the gap "
        "between them grows with the duration beyond keyframe_sample_seconds (an hour: one per 15 s). Motion "
        "elsewhere is read when a tool looks at a window.",
    )
    keyframe_sample_min_seconds: float = Field(
        default=600.0,
        ge=0,
        le=360000,
        description="Videos at least this long sample their keyframes (keyframe_sample_seconds); shorter ones "
        "decode every keyframe.",
    )
    full_scan_below_seconds: float = Field(
        default=60.0,
        ge=0,
        le=36000,
        description="Videos shorter than this are scanned frame by frame (every reference frame decoded): cheap "
        "at that length, and motion for every frame.",
    )
    full_scan_gop_seconds: float = Field(
        default=20.0,
        gt=0,
        le=3600,
        description="When keyframes are further apart than this (median), sampling after keyframes would miss "
        "too much: every reference frame is decoded instead.",
    )
    cut_size_ratio: float = Field(
        default=2.5,
        gt=1,
        le=100,
        description="A predicted frame whose packet is this many times the predicted frames on one side of it "
        "(and no smaller than those on the other, and at least 0.4 of a keyframe) is a scene cut without a keyframe.",
    )
    cut_histogram_distance: float = Field(
        default=0.25,
        gt=0,
        le=1,
        description="A keyframe is a scene cut when its Y/U/V histograms differ from the frame decoded before it "
        "by at least this (half the L1 distance, 0..1).",
    )
    # ---- overview: scene cuts ----------------------------------------------------------------
    cut_threshold: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="Intra-coded area fraction of a predicted frame above which it can be a scene cut "
        "(when also twice the recent median, or above 0.8).",
    )
    cut_min_change: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="Mean luma-signature change (0..1) a frame needs to be a scene-cut candidate.",
    )
    cut_jump_ratio: float = Field(
        default=4.0,
        gt=1,
        le=100,
        description="A cut's luma change must exceed this multiple of the recent median change.",
    )
    min_cut_gap_seconds: float = Field(
        default=1.0, ge=0, le=60, description="Cuts closer than this to the previous cut are dropped."
    )
    # ---- overview: keyframes and segments ---------------------------------------------------
    thumbnail_max_side: int = Field(
        default=160, ge=32, le=1024, description="Longer side of keyframe thumbnails, pixels."
    )
    thumbnail_min_gap_seconds: float = Field(
        default=1.0,
        ge=0,
        le=600,
        description="Keyframes closer than this to the previous thumbnail get none (cuts always get one).",
    )
    thumbnail_max_gap_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Without a keyframe for this long, the current frame becomes a thumbnail anyway.",
    )
    min_segment_seconds: float = Field(
        default=2.0, gt=0, le=3600, description="Segments shorter than this merge into a neighbour (cuts excepted)."
    )
    max_segment_seconds: float = Field(
        default=60.0, gt=0, le=36000, description="Segments longer than this are split evenly."
    )
    motion_change_ratio: float = Field(
        default=3.0,
        gt=1,
        le=100,
        description="A segment boundary is placed where the 2 s mean motion before and after differ by this factor.",
    )
    # ---- clip index --------------------------------------------------------------------------
    clip_seconds: float = Field(
        default=4.0, gt=0, le=60, description="Length of one clip window of the clip index, seconds."
    )
    frames_per_clip: int = Field(
        default=2, ge=1, le=16, description="Frames embedded per clip (see clip_pooling for how they score it)."
    )
    clip_pooling: Literal["mean", "max"] = Field(
        default="mean",
        description="How a clip's frames score it against a query. 'mean': one vector per clip, the mean of its "
        "frames' embeddings. 'max': every frame is its own row of the index and a clip scores as its best frame, "
        "so a thing on screen for part of a clip is not averaged away (frames_per_clip rows per clip).",
    )
    embed_max_side: int = Field(
        default=224, ge=32, le=1024, description="Longer side of frames decoded for embedding, pixels."
    )
    ivf_threshold: int = Field(
        default=20000, ge=1, description="Above this many clips the FAISS index is IVF instead of flat."
    )
    clip_frames: Literal["auto", "keyframes", "decoded"] = Field(
        default="auto",
        description="Where clip frames come from. 'decoded': the frames nearest each clip's sample times, from one "
        "pass decoding every reference frame. 'keyframes': only keyframes are decoded and each sample time takes "
        "the keyframe at or before it (the start of its group of pictures). 'auto': keyframes for videos of at "
        "least keyframe_clips_min_seconds whose keyframes are at most keyframe_clips_max_gap_seconds apart "
        "(median), else decoded.",
    )
    keyframe_clips_min_seconds: float = Field(
        default=600.0, ge=0, description="'auto' clip frames: shorter videos are decoded (cheap at that length)."
    )
    keyframe_clips_max_gap_seconds: float = Field(
        default=10.0,
        gt=0,
        description="'auto' clip frames: with keyframes further apart than this (median), clip frames are decoded.",
    )
    embed_max_frames: int | None = Field(
        default=None,
        ge=1,
        description="Clip frames from keyframes: None embeds every keyframe (what `foveate index` does). A number "
        "builds the index coarse, for a fast first answer: at most this many keyframes embedded (the first after "
        "each scene cut, up to half of them, the rest evenly spread), clips between them taking the nearest "
        "embedded one's embedding until a search embeds the keyframes where it lands. An ingest with None "
        "completes a coarse index in the cache.",
    )
    embed: bool = Field(default=True, description="Build the clip index (False: overview only).")

    @model_validator(mode="after")
    def _check(self) -> IngestConfig:
        if self.max_segment_seconds < self.min_segment_seconds:
            raise ValueError(
                f"max_segment_seconds ({self.max_segment_seconds}) must be >= min_segment_seconds "
                f"({self.min_segment_seconds}); raise max_segment_seconds or lower min_segment_seconds"
            )
        if self.thumbnail_max_gap_seconds < self.thumbnail_min_gap_seconds:
            raise ValueError(
                f"thumbnail_max_gap_seconds ({self.thumbnail_max_gap_seconds}) must be >= thumbnail_min_gap_seconds "
                f"({self.thumbnail_min_gap_seconds}); raise the first or lower the second"
            )
        return self

    def overview_key(self) -> dict:
        """The fields the cached overview depends on."""
        return self.model_dump(include=set(CACHE_PARTS["overview"]))

    def clips_key(self) -> dict:
        """The fields the cached clip index depends on (with the embedder)."""
        return self.model_dump(include=set(CACHE_PARTS["clips"]))

    @property
    def rows_per_clip(self) -> int:
        """Rows of the clip index per clip: 1, or ``frames_per_clip`` under ``clip_pooling="max"``."""
        return self.frames_per_clip if self.clip_pooling == "max" else 1
