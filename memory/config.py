"""Ingest parameters. Changing any field invalidates the parts of the cache that depend on it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class IngestConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bin_seconds: float = Field(default=0.5, gt=0, le=10, description="Width of one motion-timeline bin, seconds.")
    moving_threshold: float = Field(default=0.002, ge=0, description="Block displacement (fraction of the frame diagonal per frame) above which a block counts as moving.")
    cut_threshold: float = Field(default=0.6, gt=0, le=1, description="Intra-coded (or changed) fraction of a frame above which it is a scene-cut candidate.")
    min_cut_gap_seconds: float = Field(default=1.0, ge=0, description="Cuts closer than this to the previous cut are merged.")
    fallback_side: int = Field(default=64, ge=16, le=512, description="Longer side of frames decoded for the frame-difference fallback.")
    fallback_fps: float = Field(default=4.0, gt=0, description="Frames per second sampled by the frame-difference fallback.")
    thumbnail_max_side: int = Field(default=160, ge=32, le=1024, description="Longer side of keyframe thumbnails, pixels.")
    min_segment_seconds: float = Field(default=2.0, gt=0, description="Segments shorter than this merge into a neighbour.")
    max_segment_seconds: float = Field(default=60.0, gt=0, description="Segments longer than this are split evenly.")
    motion_change_ratio: float = Field(default=3.0, gt=1, description="A segment boundary is placed where smoothed motion changes by this factor.")
    clip_seconds: float = Field(default=4.0, gt=0, le=60, description="Length of one clip window of the clip index, seconds.")
    frames_per_clip: int = Field(default=2, ge=1, le=16, description="Frames embedded per clip (their embeddings are averaged).")
    embed_max_side: int = Field(default=224, ge=32, le=1024, description="Longer side of frames decoded for embedding, pixels.")
    ivf_threshold: int = Field(default=20000, ge=1, description="Above this many clips the FAISS index is IVF instead of flat.")
    embed: bool = Field(default=True, description="Build the clip index (False: overview only).")

    @model_validator(mode="after")
    def _check(self) -> "IngestConfig":
        if self.max_segment_seconds < self.min_segment_seconds:
            raise ValueError(
                f"max_segment_seconds ({self.max_segment_seconds}) must be >= min_segment_seconds "
                f"({self.min_segment_seconds}); raise max_segment_seconds or lower min_segment_seconds"
            )
        return self

    def overview_key(self) -> dict:
        """The fields the overview depends on (the clip index depends on the rest)."""
        return self.model_dump(exclude={"clip_seconds", "frames_per_clip", "embed_max_side", "ivf_threshold", "embed"})

    def clips_key(self) -> dict:
        return self.model_dump(include={"clip_seconds", "frames_per_clip", "embed_max_side", "ivf_threshold"})
