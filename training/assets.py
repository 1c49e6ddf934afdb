"""What a training run needs on disk: the synthetic world, tiny local models, indexed videos.

Everything is built into the run's output folder on first use and reused afterwards, so a
config runs from a fresh clone with no download when it names ``tiny`` models and a generated
world.
"""

from __future__ import annotations

import logging
from pathlib import Path

from foveate.agent.records import ManifestRow, read_manifest
from foveate.memory.config import IngestConfig
from foveate.memory.errors import FoveateError
from foveate.training.config import TINY, TINY_RESNET, WorldSection

logger = logging.getLogger(__name__)


def prepare_world(section: WorldSection, out_dir: Path, name: str = "world") -> Path:
    """The world folder: ``section.dir``, or one generated into ``out_dir/name`` (reused when complete)."""
    if section.dir is not None:
        if not (section.dir / "manifest.jsonl").is_file():
            raise FoveateError(f"{section.dir}: not a synthetic world (no manifest.jsonl)")
        return section.dir
    from foveate.evals.synthetic.world import generate_world

    world = out_dir / name
    if not (world / "manifest.jsonl").is_file():  # the manifest is written last: its presence means complete
        logger.info(
            "generating %d %s videos of %.1f min into %s", section.videos, section.split, section.minutes, world
        )
        generate_world(
            world,
            section.videos,
            section.minutes,
            section.seed,
            section.split,
            section.questions_per_video,
            section.fps,
            (section.width, section.height),
        )
    return world


def world_rows(world: Path, max_questions: int | None = None) -> list[ManifestRow]:
    rows = read_manifest(world / "manifest.jsonl")
    return rows[:max_questions] if max_questions else rows


def event_log(world: Path, video: str | Path):
    """The ground-truth EventLog of a world video (``events/<video stem>.json``)."""
    from foveate.evals.synthetic.world import EventLog

    path = world / "events" / f"{Path(video).stem}.json"
    try:
        return EventLog.model_validate_json(path.read_text())
    except OSError as exc:
        raise FoveateError(f"{path}: cannot read the event log ({exc.strerror or exc})") from None


# Twice the width of `foveate synth models`' controller: the 64-wide one needs several times more CPU steps to fit
# a handful of episodes, so the tiny configs would not finish in minutes.
TINY_TRAINING_HIDDEN_SIZE = 128


def resolve_controller(spec: str, out_dir: Path) -> str:
    """``tiny`` builds a tiny controller into ``out_dir/models/controller``; anything else passes through."""
    if spec != TINY:
        return spec
    from foveate.evals.synthetic.tiny_controller import build_tiny_controller

    path = out_dir / "models" / "controller"
    if not (path / "config.json").is_file():
        build_tiny_controller(path, hidden_size=TINY_TRAINING_HIDDEN_SIZE)
    return str(path)


def resolve_embedder(spec: str, out_dir: Path) -> str:
    """``tiny`` (``tiny-resnet``) builds the tiny OpenCLIP model (with a ResNet image tower) into
    ``out_dir/models/embedder``; returns an ``openclip:`` spec. Anything else passes through."""
    keyword = spec.removeprefix("openclip:")
    if keyword not in (TINY, TINY_RESNET):
        if not spec.startswith("openclip:"):
            raise FoveateError(
                f"{spec}: unknown embedder spec; use {TINY}, {TINY_RESNET}, openclip:ARCH/PRETRAINED or openclip:DIR"
            )
        return spec
    from foveate.evals.synthetic.tiny_embedder import build_tiny_embedder

    path = out_dir / "models" / ("embedder" if keyword == TINY else "embedder_resnet")
    if not (path / "open_clip_model.safetensors").is_file():
        build_tiny_embedder(path, tower="vit" if keyword == TINY else "resnet")
    return f"openclip:{path.resolve()}"


class MemoryCache:
    """Ingests each video once per process (the on-disk cache makes later processes cheap too)."""

    def __init__(self, embedder: str, ingest_config: IngestConfig, cache_root: Path | None = None) -> None:
        self.embedder, self.ingest_config, self.cache_root = embedder, ingest_config, cache_root
        self._memories: dict[str, object] = {}

    def __call__(self, video: str | Path):
        from foveate.memory.video_memory import ingest

        key = str(Path(video).resolve())
        if key not in self._memories:
            self._memories[key] = ingest(
                key, cache_root=self.cache_root, embedder=self.embedder, config=self.ingest_config
            )
        return self._memories[key]
