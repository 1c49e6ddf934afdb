"""Agent loop settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from foveate.memory.config import IngestConfig


class AgentConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_steps: int = Field(default=6, ge=1, le=64, description="Controller turns before a final answer is forced.")
    max_frames: int = Field(default=48, ge=0, description="Frames the tools may spend per question.")
    overview_images: int = Field(default=8, ge=0, le=64, description="Keyframe thumbnails in the first user turn.")
    overview_chars: int = Field(default=3000, ge=200, description="Character budget of the overview text.")


# Written beside a trained controller's weights: the settings it saw during training.
TRAINED_SETTINGS_FILE = "foveate_settings.json"


class TrainedSettings(BaseModel):
    """Agent budgets, overview and ingest settings, and embedder a controller was trained with.

    A policy trained on one rendering of the overview (thumbnail count, text budget, turn limit)
    sees a different input distribution under another; ``foveate ask`` and ``foveate batch`` use
    these as their defaults when ``--controller`` is a directory holding this file.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent: AgentConfig
    ingest: IngestConfig
    embedder: str | None = Field(default=None, description="The clip embedder the retrieve tool used (openclip:SPEC).")

    def save(self, controller_dir: str | Path) -> Path:
        path = Path(controller_dir) / TRAINED_SETTINGS_FILE
        path.write_text(self.model_dump_json(indent=1))
        return path

    @classmethod
    def find(cls, controller: str | None) -> TrainedSettings | None:
        """The settings saved with a local controller directory, or None (hub ids, servers, untrained models)."""
        if not controller or not (Path(controller) / TRAINED_SETTINGS_FILE).is_file():
            return None
        return cls.model_validate_json((Path(controller) / TRAINED_SETTINGS_FILE).read_text())

    def describe(self) -> str:
        a = self.agent
        return (
            f"max_steps={a.max_steps}, max_frames={a.max_frames}, overview_images={a.overview_images}, "
            f"overview_chars={a.overview_chars}" + (f", embedder {self.embedder}" if self.embedder else "")
        )


def agent_settings(
    controller: str | None, embedder: str | None, **overrides
) -> tuple[AgentConfig, IngestConfig, str | None, TrainedSettings | None]:
    """(agent config, ingest config, embedder) for a run: the controller's trained settings when it has
    them, else the defaults; ``overrides`` that are not None (command-line flags) win."""
    trained = TrainedSettings.find(controller)
    base = trained.agent if trained else AgentConfig()
    agent = AgentConfig(**{**base.model_dump(), **{k: v for k, v in overrides.items() if v is not None}})
    ingest = trained.ingest if trained else IngestConfig()
    if embedder is None and trained is not None and trained.embedder:
        local = trained.embedder.removeprefix("openclip:")
        # A local embedder folder that has since moved is not an error: the default applies.
        embedder = trained.embedder if not local.startswith(("/", ".")) or Path(local).is_dir() else None
    return agent, ingest, embedder, trained
