"""Agent loop settings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AgentConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_steps: int = Field(default=6, ge=1, le=64, description="Controller turns before a final answer is forced.")
    max_frames: int = Field(default=48, ge=0, description="Frames the tools may spend per question.")
    overview_images: int = Field(default=8, ge=0, le=64, description="Keyframe thumbnails in the first user turn.")
    overview_chars: int = Field(default=3000, ge=200, description="Character budget of the overview text.")
