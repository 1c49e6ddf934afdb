"""`foveate train pipeline`: the whole learning study in one resumable command.

world -> embedder -> controller (random init) -> pretraining -> drill (training/copy_drill.py; skipped when
``drill_steps`` is 0) -> SFT -> GRPO -> (the GRPO snapshot with the
best val reward) -> the held-out test
split answered by the untrained, pretrained-only, SFT and GRPO controllers and by the uniform and
retrieval baselines (the SFT controller, the same frame budget) -> one ``foveate eval`` report.

Every stage writes into its own folder of OUT and is skipped when its output is there, so an
interrupted run resumes where it stopped (pretraining from its last saved step, OUT/pretrain/resume.pt);
OUT/stages.json keeps each finished stage's seconds.
A preset is ``cpu`` (2 CPU cores, well under an hour), ``gpu`` (a larger world and controller,
one GPU) or a YAML file with the fields of :class:`PipelineConfig`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

logger = logging.getLogger(__name__)

STAGES = ("worlds", "embedder", "controller", "pretrain", "drill", "sft", "grpo", "select", "answer", "report")


class PipelineConfig(BaseModel):
    """Sizes and schedules of one learning study. Presets: :data:`PRESETS`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="custom", description="Shown in the results.")
    seed: int = Field(default=0, description="Seeds the worlds, the controller's init, pretraining, SFT and GRPO.")
    # world
    train_videos: int = Field(default=32, ge=1)
    val_videos: int = Field(default=2, ge=1)
    test_videos: int = Field(default=4, ge=1)
    minutes: float = Field(default=1.0, gt=0)
    questions: int = Field(default=16, ge=1, description="Questions per video.")
    width: int = 160
    height: int = 120
    # embedder
    clip_epochs: int = Field(default=20, ge=0)
    clip_videos: int = Field(
        default=0,
        ge=0,
        description="Train-split videos the embedder learns from, rendered into OUT/clip_world "
        "(0: the controller's train videos). Rendering is cheap and no controller stage reads them.",
    )
    clip_lr_schedule: Literal["constant", "cosine"] = Field(
        default="cosine",
        description="The embedder's learning rate: 'cosine' warms up over 100 steps and decays to zero by the "
        "last step; 'constant' (runs before L5) stops wherever the last steps left it.",
    )
    embedder_tower: Literal["vit", "resnet"] = Field(
        default="vit",
        description="Image tower of the tiny OpenCLIP embedder: 'vit' (16-pixel patches) or 'resnet' (open_clip's "
        "ModifiedResNet, which tells the world's shapes apart sooner; docs/results.md, run L12).",
    )
    # controller
    hidden: int = 128
    layers: int = 2
    vocab: int = 2048
    schemas_in_vocab: bool = True
    twin_tokens: bool = Field(
        default=False,
        description="Start each word token and its space-prefixed twin ('left', ' left') from one embedding, so "
        "a word copied from prose into a JSON string (the answer naming the option a description names) is "
        "one copy, not a mapping learned word by word.",
    )
    spaced_answer_words: bool = Field(
        default=False,
        description="The controller's tokenizer writes the space before the world's colour and direction words "
        "as a token of its own, so ' blue' in a description and 'blue' in the answer JSON are one token and "
        "the answer copies a token. Off: on seed 2 the copy stayed unlearned with it and the lone-frame colour "
        "caption was lost (docs/results.md, run S2w).",
    )
    vision_depth: int = Field(default=1, ge=1, description="Blocks of the controller's vision tower.")
    vision_hidden: int = Field(default=32, ge=16, multiple_of=16, description="Width of its vision tower.")
    image_side: int = Field(
        default=112,
        ge=56,
        multiple_of=28,
        description="The controller sees an image at up to image_side**2 pixels (its processor's max_pixels): a "
        "160x120 frame at 112x84 (12 tokens) with 112, at 168x112 (24 tokens) with 168.",
    )
    # pretraining (0 steps: skipped, SFT starts from the random init)
    pretrain_steps: int = Field(default=600, ge=0)
    pretrain: dict[str, Any] = Field(default_factory=dict, description="Further PretrainRunConfig fields.")
    # the copy drill (training/copy_drill.py) between pretraining and SFT
    drill_steps: int = Field(
        default=0,
        ge=0,
        description="Steps of 16 reading episodes, each one whose answer copies a colour or whose description "
        "copies a motion line, trained after pretraining and before SFT (0: no drill; SFT starts from the "
        "pretrained controller). The colour copy that pretraining's mix leaves at chance is learned in 250 "
        "(docs/results.md, run H14).",
    )
    drill_copy_weight: float = Field(
        default=5.0, gt=0, description="The drill's loss weight on the copied tokens (the rest: 1)."
    )
    drill_lr: float = Field(default=1e-3, gt=0, description="The drill's constant AdamW learning rate.")
    # SFT
    sft_epochs: int = 5
    sft_batch: int = 4
    sft_lr: float = 3e-3
    sft_warmup: int = 20
    paths: int = Field(default=2, description="Oracle paths per training question.")
    oracle: dict[str, Any] = Field(default_factory=dict)
    # GRPO
    grpo_steps: int = 20
    grpo_batch: int = 8
    grpo_generations: int = 4
    grpo_lr: float = 5e-5
    grpo_temperature: float = Field(
        default=0.7,
        gt=0,
        description="Sampling temperature of GRPO's rollouts (TRL's temperature; held-out answers are greedy).",
    )
    grpo_select_every: int = Field(
        default=0,
        ge=0,
        description="Snapshot GRPO every N steps and keep the snapshot with the best mean reward on the val split "
        "(the 'select' stage); 0 keeps the last step.",
    )
    grpo_videos: int = Field(
        default=0,
        ge=0,
        description="Draw GRPO's prompts from this many fresh training-split videos that neither SFT nor the "
        "embedder saw (OUT/rl); 0 draws them from SFT's own training videos.",
    )
    grpo_beta: float = Field(
        default=0.0,
        ge=0,
        description="Weight of the KL penalty to the SFT controller (TRL's beta; 0 loads no reference model).",
    )
    grpo_scale_rewards: Literal["group", "batch", "none"] = Field(
        default="group",
        description="TRL's scale_rewards: divide each advantage by its group's reward std ('group'), the batch's "
        "('batch') or not at all ('none'). With 'group', a group whose answers are all right or all wrong is "
        "ranked by its small frame-penalty and IoU differences as strongly as another is by correctness.",
    )
    # the agent and the ingest settings shared by training and answering
    agent: dict[str, Any] = Field(
        default_factory=lambda: {"max_steps": 4, "max_frames": 16, "overview_images": 2, "overview_chars": 800}
    )
    # Four frames a 4 s clip (the default embeds two), each its own row of the index: a clip scores as its
    # best frame, so a sprite on screen for part of a clip is not averaged away with the background
    # (docs/results.md: runs F1 and F2, then L8-L10).
    ingest: dict[str, Any] = Field(
        default_factory=lambda: {
            "thumbnail_max_side": 64,
            "embed_max_side": 128,
            "frames_per_clip": 4,
            "clip_pooling": "max",
        }
    )

    @model_validator(mode="after")
    def _check_sections(self) -> PipelineConfig:
        """The agent, ingest, oracle and pretrain sections are checked as they load, not when a later stage first
        builds them (by then OUT/config.json holds the bad value, and a fixed config no longer resumes it)."""
        from foveate.agent.config import AgentConfig
        from foveate.memory.config import IngestConfig
        from foveate.training.oracle import OracleConfig

        builds = {
            "agent": lambda: AgentConfig(**self.agent),
            "ingest": lambda: IngestConfig(**self.ingest),
            "oracle": lambda: OracleConfig(**self.oracle),
        }
        if self.pretrain_steps:  # pretraining's own section, as its stage will build it
            builds["pretrain"] = lambda: self.pretrain_config("controller")
        for name, build in builds.items():
            try:
                build()
            except ValidationError as exc:
                where = "; ".join(f"{name}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise ValueError(where) from None
        return self

    def pretrain_config(self, model_path: Path | str):
        """The pretraining stage's :class:`~foveate.training.config.PretrainRunConfig`: frames and grounded
        episodes as the agent meets them (its budgets, the ingest's clips and thumbnails), then :attr:`pretrain`."""
        from foveate.agent.config import AgentConfig
        from foveate.memory.config import IngestConfig
        from foveate.training.config import PretrainRunConfig

        agent, ingest = AgentConfig(**self.agent), IngestConfig(**self.ingest)
        fields = {
            "model": {"path": str(model_path), "dtype": "float32"},
            "seed": self.seed,
            "steps": self.pretrain_steps,
            "caption": {"width": self.width, "height": self.height, "minutes": self.minutes},
            "ground": {
                "clip_seconds": ingest.clip_seconds,
                "thumbnail_max_side": ingest.thumbnail_max_side,
                "max_steps": agent.max_steps,
                "max_frames": agent.max_frames,
                "oracle": self.oracle,
            },
        }
        merged = {**fields, **self.pretrain}
        for section in ("caption", "ground"):  # a field of these set in `pretrain` keeps the world's others
            merged[section] = {**fields[section], **self.pretrain.get(section, {})}
        return PretrainRunConfig(**merged)

    def trained_common(self, out: Path, embedder: str) -> dict:
        """Fields the SFT and GRPO stages of a run in ``out`` share."""
        return {
            "embedder": embedder,
            "lora": {"enabled": False},
            "world": {"dir": out / "train"},
            "agent": self.agent,
            "ingest": self.ingest,
            "seed": self.seed,
        }

    def sft_start(self, out: Path) -> Path:
        """The controller SFT starts from in ``out``: the drilled, the pretrained or the initial one."""
        if self.drill_steps:
            return out / "drill" / "controller"
        return out / "pretrain" / "controller" if self.pretrain_steps else out / "models" / "controller"

    def sft_config(self, out: Path, embedder: str, trl: dict[str, Any]):
        """The SFT stage's :class:`~foveate.training.config.SFTRunConfig` for a run in ``out``, from
        :meth:`sft_start`; ``trl`` holds the trainer fields every stage shares."""
        from foveate.training.config import SFTRunConfig

        return SFTRunConfig(
            model={"path": str(self.sft_start(out)), "dtype": "float32"},
            data={"oracle_paths_per_question": self.paths, "cache_rendered": True, "oracle": self.oracle},
            trl={
                **trl,
                "num_train_epochs": self.sft_epochs,
                "per_device_train_batch_size": self.sft_batch,
                "learning_rate": self.sft_lr,
                "lr_scheduler_type": "cosine",
                "warmup_steps": self.sft_warmup,
            },
            **self.trained_common(out, embedder),
        )

    def build_controller(self, path: Path) -> Path:
        """Build this study's randomly initialised tiny controller into ``path`` (seeded with :attr:`seed`)."""
        from foveate.evals.synthetic.events import COLOURS, DIRECTIONS
        from foveate.evals.synthetic.tiny_controller import build_tiny_controller

        return build_tiny_controller(
            path,
            seed=self.seed,
            hidden_size=self.hidden,
            layers=self.layers,
            vocab_size=self.vocab,
            tool_schemas_in_vocab=self.schemas_in_vocab,
            twin_tokens=self.twin_tokens,
            spaced_words=(*COLOURS, *DIRECTIONS) if self.spaced_answer_words else (),
            vision_depth=self.vision_depth,
            vision_hidden=self.vision_hidden,
            image_side=self.image_side,
        )


# The oracle of both presets: it looks only at retrieved clips, with few frames. Three clips listed (three
# thumbnails), a zoom of 2-3 frames or a dense_sample at 1 fps (4 frames of a 4 s clip; its motion line
# does not depend on the rate): about 8 frames a question with the overview's 2, half the baselines' 16-18.
CHEAP_LOOKS = {
    "look_at": "retrieved",
    "p_thought": 1.0,
    "p_dense": 0.0,
    "describe": True,
    "retrieve_k": (3,),
    "zoom_frames": (2, 3),
    "dense_fps": 1.0,
}

PRESETS: dict[str, PipelineConfig] = {
    # 2 CPU cores: 32 train videos x 16 questions, 4 held-out videos (64 questions).
    "cpu": PipelineConfig(
        name="cpu",
        # The embedder learns from 256 videos (rendered in ~40 s, 16 epochs in ~6 min on 2 cores), not the
        # controller's 32: held-out retrieval by subject, top 1, 0.47 -> 0.61 on seed 1 (docs/results.md).
        clip_videos=256,
        clip_epochs=16,
        embedder_tower="resnet",
        # 1,200 reading steps after the 1,800 caption steps. 1,900 (run L2 on) took ~1,000 s of pretraining's
        # ~1,580 here; the held-out reading skills stand at step 2,800 where they end at 3,700 (H7's curve;
        # H1, H2: 1,100 reading steps teach what 1,900 do), and the drill below teaches the copy they lack.
        pretrain_steps=3000,
        pretrain={
            "batch_size": 16,
            "eval_every": 400,
            "eval_examples": 32,
            "learning_rate": 5e-4,  # seeing the world's sprites is lost at higher rates
            "read_learning_rate": 1.5e-3,  # reading is not (docs/results.md, run G)
            "caption_first_steps": 1800,
            "mix": {"search": 1, "look": 1, "cite": 2, "caption": 1, "ground": 2},
            "read": {"p_order": 0.1},  # the letter list and answer are short: a tenth of reading episodes
            # Captions in several wordings: a controller that learned one may read the colour at a fixed distance
            # after the frame and not read a zoom's frames in an episode. SFT accuracy seed 0 0.58 -> 0.53 (V0,
            # with GRPO 0.55 >= SFT where the old preset's fell), seed 2 0.31 -> 0.45 (S2v; docs/results.md).
            "caption": {"p_varied": 0.75},
        },
        # The colour word a description names is the space-prefixed twin of the answer's; starting the pair
        # from one embedding makes that copy learnable (seed 1, answer after the true description 0.17 ->
        # 1.0 after pretraining), and a lower SFT rate keeps it (0.33 at 1e-3, 0.90 at 3e-4; run T2). Seed 3
        # learned it too (1.00; run S3); seed 2 did not (0.15; run S2), nor does it read its zooms.
        twin_tokens=True,
        # Pretraining's mix leaves the copy of a colour from the description into the answer at chance (seed 0
        # of an AVX-512 machine; seeds 1 and 2 there answer colour questions with one word too); 250 steps of
        # nothing but such copies, their loss weighted 5x, teach it (a head with 0.99 of its weight on the
        # colour): seed 0's SFT 0.48 -> 0.55, GRPO 0.48 -> 0.58 (runs H14, H15). With the 1,200 reading steps
        # above, seeds 0-2: SFT 0.52, 0.52, 0.55; GRPO 0.52, 0.53, 0.58; 41 min from nothing (H17, H18).
        drill_steps=250,
        drill_copy_weight=5.0,
        sft_epochs=2,
        sft_lr=3e-4,
        oracle=CHEAP_LOOKS,
        # 20 GRPO steps of 2 questions move the SFT policy by a few answers either way (its retrieve queries
        # gain or lose "crossing the screen"); val reward after 20 steps over two seeds and temperatures
        # 0.7-1.0 ranged 0.71-0.80 around SFT's 0.79 (docs/results.md): a snapshot every 5 steps, the best on val kept.
        grpo_select_every=5,
    ),
    # One GPU: a larger world and controller, longer schedules.
    "gpu": PipelineConfig(
        name="gpu",
        train_videos=96,
        clip_videos=512,
        test_videos=8,
        minutes=2.0,
        questions=16,
        hidden=256,
        layers=4,
        pretrain_steps=6000,
        pretrain={
            "batch_size": 32,
            "eval_every": 1000,
            "eval_examples": 64,
            "learning_rate": 5e-4,
            "read_learning_rate": 1.5e-3,
            "caption_first_steps": 2000,
            "mix": {"search": 1, "look": 1, "cite": 1, "caption": 1, "ground": 2},
            "read": {"p_order": 0.1},
            "caption": {"p_varied": 0.75},  # as the cpu preset
            # one core draws a mixed batch of 32 in ~0.4 s, captions in ~0.2 s (pretrain_step --preset gpu
            # --data-only): 34 minutes for the 6,000 steps, whatever the GPU's pace
            "draw_workers": 8,
        },
        sft_epochs=8,
        sft_batch=8,
        sft_lr=1e-3,
        paths=2,
        oracle=CHEAP_LOOKS,
        grpo_steps=100,
        grpo_select_every=25,
        grpo_batch=16,
        grpo_generations=8,
        grpo_lr=2e-5,
    ),
}


def trainer_fields(cuda: bool) -> dict[str, Any]:
    """TRL fields the pipeline's SFT and GRPO stages share."""
    return {
        "report_to": "none",
        "save_strategy": "no",
        "logging_steps": 5,
        "gradient_checkpointing": False,
        "bf16": False,  # fp32: bf16 GRPO on a model this small hit NaN gradients
        **({} if cuda else {"use_cpu": True}),
    }


def load_pipeline_config(preset: str, seed: int | None = None) -> PipelineConfig:
    """A preset by name, or a YAML file of PipelineConfig fields; ``seed`` overrides the config's."""
    from foveate.training.config import ConfigError

    if preset in PRESETS:
        config = PRESETS[preset]
    else:
        path = Path(preset)
        if not path.is_file():
            raise ConfigError(f"{preset}: not a preset ({', '.join(PRESETS)}) and no such YAML file")
        import yaml

        try:
            config = PipelineConfig(**{"name": path.stem, **(yaml.safe_load(path.read_text()) or {})})
        except (yaml.YAMLError, ValidationError, TypeError) as exc:
            raise ConfigError(f"{path}: {' '.join(str(exc).split())}") from None
    return config if seed is None else config.model_copy(update={"seed": seed})


def _differing(a: dict, b: dict) -> list[str]:
    """The top-level keys whose values differ between two configs read as JSON."""
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def claim_run_folder(out: Path, config: PipelineConfig) -> None:
    """Write ``config`` to OUT/config.json, or check that the run already there has the same config
    (a resume); raises ConfigError naming the fields that differ."""
    from foveate.training.config import ConfigError

    saved = out / "config.json"
    # Compared as JSON: a preset's tuples (the oracle's retrieve_k) come back from the file as lists.
    wanted = json.loads(config.model_dump_json())
    if saved.is_file():
        held = json.loads(saved.read_text())
        with contextlib.suppress(ValueError):  # fields added since take their defaults
            held = json.loads(PipelineConfig(**held).model_dump_json())
        differ = _differing(wanted, held)
        if differ:
            raise ConfigError(
                f"{out} holds a run of another config ({saved}; differs in {', '.join(differ)}); "
                "resume it with that config or use a new folder"
            )
    saved.write_text(config.model_dump_json(indent=1))


class _Stages:
    """Stage timing that survives a resume: OUT/stages.json holds every finished stage's seconds."""

    def __init__(self, out: Path, announce: Callable[[str], None] | None) -> None:
        self.path = out / "stages.json"
        self.seconds: dict[str, float] = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.announce = announce

    def run(
        self,
        name: str,
        done: Callable[[], bool],
        work: Callable[[], Any],
        seconds: Callable[[], float] | None = None,
    ) -> None:
        """Run ``work`` unless ``done()``; its seconds are the call's, or ``seconds()`` after it (a stage that
        resumes inside itself counts the time of the calls it resumes)."""
        if done():
            logger.info("stage %s: done before, skipped", name)
            return
        if self.announce is not None:
            self.announce(name)
        started = time.perf_counter()
        work()
        self.seconds[name] = round(time.perf_counter() - started if seconds is None else seconds(), 1)
        self.path.write_text(json.dumps(self.seconds, indent=1))
        logger.info("stage %s: %.1f s", name, self.seconds[name])


def run_pipeline(
    config: PipelineConfig,
    out: Path,
    announce: Callable[[str], None] | None = None,
    callbacks: Callable[[str], list] | None = None,
    step_progress: Callable[[str], Any] | None = None,
    work_progress: Callable[[str], Any] | None = None,
    workers: int | None = None,
) -> dict:
    """Run (or resume) every stage into ``out``; returns the summary (also OUT/results.json).

    ``announce(stage)`` is called as each stage starts; ``callbacks(stage)`` gives transformers
    TrainerCallbacks (progress bars) for the TRL stages; ``step_progress(name)`` a context manager
    that yields ``progress(step, steps, loss=None)`` for the embedder's, pretraining's and the drill's steps;
    ``work_progress(name)`` one that yields ``progress(done, total)`` for the oracle's SFT episodes and the
    answers of the select and answer stages.

    ``workers``: processes that answer the val and test questions, one policy each at a time (None: one
    per torch thread, 1 on a GPU; see :func:`answer_split`). They do not change what is trained.
    """
    import torch

    from foveate.agent.config import AgentConfig
    from foveate.memory.config import IngestConfig

    out = Path(out).resolve()  # the embedder spec and the caches name paths inside it
    out.mkdir(parents=True, exist_ok=True)
    claim_run_folder(out, config)
    stages = _Stages(out, announce)
    agent, ingest = AgentConfig(**config.agent), IngestConfig(**config.ingest)
    cuda = torch.cuda.is_available()
    c = config
    trl_common = trainer_fields(cuda)
    answer_workers = workers if workers is not None else (1 if cuda else torch.get_num_threads())
    if answer_workers < 1:
        raise ValueError(f"workers must be at least 1, not {answer_workers}")
    cb = (lambda stage: callbacks(stage)) if callbacks is not None else (lambda stage: None)

    def shown(progress: Callable[[str], Any] | None, name: str):
        """The progress context ``name`` (one that yields None without a display)."""
        return progress(name) if progress is not None else contextlib.nullcontext()

    def make_world(name: str, videos: int, first: int, split: str) -> Path:
        """``OUT/name``: ``videos`` world videos of ``split`` from its ``first``-th on (kept if complete)."""
        from foveate.evals.synthetic.world import cpu_count, generate_world

        if not (out / name / "manifest.jsonl").is_file():  # the manifest is written last
            size = (c.width, c.height)
            generate_world(out / name, videos, c.minutes, first, split, c.questions, 10, size, workers=cpu_count())
        return out / name

    def worlds() -> None:
        for split, videos in (("train", c.train_videos), ("val", c.val_videos), ("test", c.test_videos)):
            make_world(split, videos, c.seed, split)

    stages.run("worlds", lambda: (out / "test" / "manifest.jsonl").is_file(), worlds)

    def embedder() -> None:
        from foveate.training.clip import run_clip
        from foveate.training.config import ClipRunConfig

        clip_world = make_world("clip_world", c.clip_videos, c.seed, "train") if c.clip_videos else out / "train"
        spec = "tiny"
        if c.embedder_tower != "vit":
            from foveate.evals.synthetic.tiny_embedder import build_tiny_embedder

            spec = f"openclip:{build_tiny_embedder(out / 'models' / 'embedder', seed=c.seed, tower=c.embedder_tower)}"
        clip_cfg = ClipRunConfig(
            embedder=spec,
            world={"dir": clip_world},
            eval_world={"dir": out / "val"},
            frames_per_event=4,
            frame_max_side=128,
            epochs=c.clip_epochs,
            batch_size=64,
            learning_rate=5e-4,
            lr_schedule=c.clip_lr_schedule,
            warmup_steps=100,
            seed=c.seed,
        )
        with shown(step_progress, "embedder") as progress:
            run_clip(clip_cfg, out / "clip", progress and (lambda _phase, step, steps: progress(step, steps)))

    stages.run("embedder", lambda: (out / "clip" / "metrics.json").is_file(), embedder)
    clip = json.loads((out / "clip" / "metrics.json").read_text())
    embedder_spec = clip["embedder"]

    init = out / "models" / "controller"

    stages.run("controller", lambda: (init / "config.json").is_file(), lambda: c.build_controller(init))

    pretrained = out / "pretrain" / "controller" if c.pretrain_steps else init

    def pretrain() -> None:
        from foveate.training.pretrain import run_pretrain

        cfg = c.pretrain_config(init)
        with shown(step_progress, "pretrain") as progress:
            run_pretrain(cfg, out / "pretrain", progress)

    if c.pretrain_steps:
        metrics = out / "pretrain" / "metrics.json"
        # its seconds: those of every call it took (it resumes from its last saved step)
        stages.run("pretrain", metrics.is_file, pretrain, lambda: json.loads(metrics.read_text())["seconds"])

    def drill() -> None:
        from foveate.training.copy_drill import drill as run_drill

        read = c.pretrain_config(pretrained).read
        with shown(step_progress, "drill") as progress:
            run_drill(
                str(pretrained),
                out / "drill",
                read,
                c.drill_steps,
                c.drill_copy_weight,
                c.drill_lr,
                episodes=0,
                seed=c.seed,
                progress=progress,
            )

    if c.drill_steps:
        stages.run("drill", lambda: (out / "drill" / "metrics.json").is_file(), drill)

    def sft() -> None:
        from foveate.training.sft import run_sft

        with shown(work_progress, "sft examples: questions") as progress:
            run_sft(c.sft_config(out, embedder_spec, trl_common), out / "sft", cb("sft"), progress)

    stages.run("sft", lambda: (out / "sft" / "controller" / "config.json").is_file(), sft)

    every = c.grpo_select_every  # snapshots for the select stage: TRL's checkpoints, weights only
    snapshots = {"save_strategy": "steps", "save_steps": every, "save_only_model": True} if every else {}

    def grpo() -> None:
        from foveate.training.config import GRPORunConfig
        from foveate.training.grpo import run_grpo

        common = c.trained_common(out, embedder_spec)
        if c.grpo_videos:
            # past the videos SFT and the embedder learned from: the prompts' answers are not memorised
            first = c.seed + max(c.train_videos, c.clip_videos)
            common["world"] = {"dir": make_world("rl", c.grpo_videos, first, "train")}
        grpo_cfg = GRPORunConfig(
            model={"path": str(out / "sft" / "controller"), "dtype": "float32"},
            generation="transformers",
            trl={
                **trl_common,
                "logging_steps": 1,
                "max_steps": c.grpo_steps,
                "per_device_train_batch_size": c.grpo_batch,
                "num_generations": c.grpo_generations,
                # TRL counts tool results in the completion: retrieve + zoom + answer must fit
                "max_completion_length": 768,
                "temperature": c.grpo_temperature,
                "learning_rate": c.grpo_lr,
                "beta": c.grpo_beta,
                "scale_rewards": c.grpo_scale_rewards,
                **snapshots,
            },
            **common,
        )
        run_grpo(grpo_cfg, out / "grpo", callbacks=cb("grpo"))

    stages.run("grpo", lambda: (out / "grpo" / "controller" / "config.json").is_file(), grpo)
    trained = out / "grpo" / "controller"

    def select() -> dict:
        with shown(work_progress, "select: val answers") as progress:
            return select_grpo(out, c.grpo_steps, embedder_spec, agent, ingest, progress, answer_workers)

    if every:
        stages.run(
            "select",
            lambda: (out / "grpo" / "selection.json").is_file(),
            select,
        )
        trained = out / "grpo" / "selected"

    runs = [("untrained", init, "agent")]
    if c.pretrain_steps:
        runs.append(("pretrained", pretrained, "agent"))
    runs += [
        ("sft", out / "sft" / "controller", "agent"),
        ("grpo", trained, "agent"),
        ("uniform", out / "sft" / "controller", "uniform"),
        ("retrieval", out / "sft" / "controller", "retrieval"),
    ]
    preds = [out / "preds" / f"{name}.jsonl" for name, _, _ in runs]

    def answer() -> list[Path]:
        with shown(work_progress, "answer: test answers") as progress:
            return answer_test(out, runs, embedder_spec, agent, ingest, progress, answer_workers)

    expected = len(_manifest_ids(out / "test" / "manifest.jsonl"))
    stages.run(
        "answer",
        lambda: all(p.is_file() and len(_manifest_ids(p)) >= expected for p in preds),
        answer,
    )

    def report() -> None:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "foveate.cli",
                "eval",
                str(out / "test" / "manifest.jsonl"),
                *map(str, preds),
                "--report",
                str(out / "report"),
                "--against",
                "sft",
                "--json",
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"foveate eval failed: {proc.stderr.strip()[-2000:]}")
        (out / "report" / "eval.json").write_text(proc.stdout.splitlines()[-1])
        _plot_grpo(
            out / "grpo" / "train_log.json", out / "report" / "grpo_reward.png", out / "grpo" / "selection.json"
        )
        plot_pretrain(out / "pretrain" / "metrics.json", out / "report" / "pretrain_skills.png")

    stages.run("report", lambda: (out / "report" / "eval.json").is_file(), report)
    summary = summarise(out, config, [name for name, _, _ in runs], agent.max_frames, embedder_spec, ingest)
    summary["seconds"] = dict(stages.seconds)
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def _manifest_ids(path: Path) -> set[str]:
    return {json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()}


def summarise(out: Path, config: PipelineConfig, names: list[str], max_frames: int, embedder: str, ingest) -> dict:
    """The figures of a finished run, from its files."""
    evaluated = json.loads((out / "report" / "eval.json").read_text())
    by_file = {Path(v["file"]).stem: v for v in evaluated.values()}
    runs = {}
    for name in names:
        overall = by_file.get(name, {}).get("overall", {})
        traces = trace_metrics(out / "preds" / f"{name}.trace.jsonl", max_frames)
        runs[name] = {
            "n": overall.get("n"),
            "accuracy": overall.get("accuracy"),
            "accuracy_ci": overall.get("accuracy_ci95"),
            "evidence_iou": overall.get("evidence_iou"),
            "frames_used": overall.get("frames_used"),
            "tool_calls": overall.get("tool_calls"),
            **traces,
        }
        if "paired" in by_file.get(name, {}):  # this policy minus SFT, question by question
            runs[name]["vs_sft"] = {k: v for k, v in by_file[name]["paired"].items() if k != "against"}
    summary: dict = {"preset": config.name, "seed": config.seed, "runs": runs}
    summary["retrieval_top1"] = retrieval_localization(out, embedder, ingest)
    summary["clip"] = json.loads((out / "clip" / "metrics.json").read_text())
    if (out / "pretrain" / "metrics.json").is_file():
        summary["pretrain"] = json.loads((out / "pretrain" / "metrics.json").read_text())
    if (out / "drill" / "metrics.json").is_file():
        summary["drill"] = json.loads((out / "drill" / "metrics.json").read_text())
    summary["grpo"] = grpo_curve(out / "grpo" / "train_log.json")
    from foveate.training.machine import machine_record

    summary["machine"] = machine_record()  # of the process that writes the results (a resumed run: the last)
    if (out / "grpo" / "selection.json").is_file():
        summary["grpo_selection"] = json.loads((out / "grpo" / "selection.json").read_text())
    return summary


SPREAD_METRICS = (
    "accuracy",
    "evidence_iou",
    "looked_at_evidence",
    "frames_used",
    "query_names_subject",
    "distinct_query_share",
    "distinct_subject_queries",
    "heldout_reward",
)


def seed_spread(outs: list[Path]) -> dict:
    """The spread over seeds of finished pipeline runs of one config: per policy and metric, each seed's
    value, the mean, the sample standard deviation and the range. Each seed draws its own worlds (so its
    own held-out questions), init, pretraining examples, SFT data and GRPO groups; the spread covers all of
    them. Runs that differ in anything but the seed, or share a seed, are refused."""
    import numpy as np

    from foveate.training.config import ConfigError

    if len(outs) < 2:
        raise ConfigError("give at least two finished runs (OUTPUT folders of `foveate train pipeline`)")
    runs, configs = [], []
    for out in outs:
        path = Path(out) / "results.json"
        if not path.is_file():
            raise ConfigError(f"{out}: no results.json; finish the run first (`foveate train pipeline ... -o {out}`)")
        runs.append(json.loads(path.read_text()))
        # through the model: a run saved before a field existed has that field's default
        config = load_pipeline_config(str(Path(out) / "config.json")).model_dump(mode="json")
        configs.append({k: v for k, v in config.items() if k not in ("seed", "name")})
    for out, config in zip(outs[1:], configs[1:]):
        if keys := _differing(config, configs[0]):
            raise ConfigError(f"{out}: not the same config as {outs[0]} (differs in {', '.join(keys)})")
    seeds = [r["seed"] for r in runs]
    if len(set(seeds)) < len(seeds):
        raise ConfigError(f"the runs share a seed ({seeds}); the spread is over different seeds")
    policies: dict = {}
    for name in dict.fromkeys(n for r in runs for n in r["runs"]):
        policies[name] = {}
        for metric in SPREAD_METRICS:
            values = [r["runs"].get(name, {}).get(metric) for r in runs]
            if any(v is None for v in values):
                continue
            a = np.asarray(values, dtype=float)
            policies[name][metric] = {
                "values": [round(float(v), 4) for v in a],
                "mean": round(float(a.mean()), 4),
                "std": round(float(a.std(ddof=1)), 4),
                "min": round(float(a.min()), 4),
                "max": round(float(a.max()), 4),
            }
    return {"preset": runs[0]["preset"], "seeds": seeds, "runs": [str(o) for o in outs], "policies": policies}


def grpo_curve(log_path: Path) -> dict:
    """GRPO's logged figures by step: reward, its parts, tool calls and parse failures."""
    if not log_path.is_file():
        return {}
    keys = {
        "reward": "reward",
        "correct": "rewards/correct/mean",
        "format": "rewards/format/mean",
        "evidence_iou": "rewards/evidence_iou/mean",
        "frame_penalty": "rewards/frame_penalty/mean",
        "tool_calls": "tools/call_frequency",
        "parse_failure_rate": "tools/parse_failure_rate",
    }
    rows = [h for h in json.loads(log_path.read_text()) if "reward" in h]
    curve: dict = {"step": [int(h["step"]) for h in rows]}
    for name, key in keys.items():
        curve[name] = [round(float(h[key]), 4) if key in h else None for h in rows]
    return curve


def _plot_grpo(log_path: Path, png: Path, selection: Path | None = None) -> None:
    """GRPO's training reward and its parts per step; with a select stage's ``selection.json``, the val
    reward of the SFT controller (step 0) and of every snapshot, the kept one circled."""
    curve = grpo_curve(log_path)
    if not curve.get("step"):
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name in ("reward", "correct", "evidence_iou", "format"):
        ax.plot(curve["step"], [v if v is not None else float("nan") for v in curve[name]], label=name)
    if selection is not None and selection.is_file():
        chosen = json.loads(selection.read_text())
        points = {
            0 if k == "sft" else int(k.removeprefix("step")): v["heldout_reward"]
            for k, v in chosen["candidates"].items()
        }
        steps = sorted(points)
        ax.plot(steps, [points[s] for s in steps], "k--o", markersize=4, label="val reward (step 0: SFT)")
        best = chosen["selected_step"]
        ax.plot([best], [points[best]], "o", markersize=11, markerfacecolor="none", markeredgecolor="k", label="kept")
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("mean over the step's rollouts")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    plt.close(fig)


PRETRAIN_CURVES = (
    "colour",
    "shape",
    "word",
    "query",
    "handle",
    "queries",
    "said",
    "order",
    "motion",
    "when",
    "pick",
    "describe",
    "seen",
    "answer",
)


def plot_pretrain(metrics_path: Path, png: Path) -> None:
    """Held-out pretraining skills by step (``OUT/pretrain/metrics.json``: before, the curve, after)."""
    if not metrics_path.is_file():
        return
    metrics = json.loads(metrics_path.read_text())
    points = [{"step": 0, **metrics["before"]}, *metrics["curve"], {"step": metrics["steps"], **metrics["after"]}]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    shown = [name for name in PRETRAIN_CURVES if name in points[-1]]
    for i, name in enumerate(shown):  # more curves than a colour cycle: seeing solid, reading dashed, answering dotted
        style = "-" if name in ("colour", "shape", "word") else ("--" if name in ("query", "handle") else ":")
        ax.plot(
            [p["step"] for p in points],
            [p.get(name, float("nan")) for p in points],
            marker=".",
            ls=style,
            color=f"C{i % 10}",
            label=name,
        )
    first = metrics.get("caption_first_steps")
    if first:
        ax.axvline(first, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("pretraining step")
    ax.set_ylabel("held-out exact match (teacher-forced)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="best", fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    plt.close(fig)


def trace_metrics(trace: Path, max_frames: int) -> dict:
    """Where an agent run looked and what it asked, from its trajectories.

    - ``looked_at_evidence``: share of questions where a window it zoomed on or densely sampled
      (and got frames from) overlaps the gold evidence.
    - ``distinct_query_share``: distinct first retrieve queries / distinct questions, over the
      questions that retrieved (1.0: every question got its own query; low: one memorised query).
    - ``query_names_subject``: over the questions about one sprite that retrieved, the share whose
      first query names its colour and shape words (the world's vocabulary) as the question does.
    - ``distinct_subject_queries``: over the distinct subjects of those questions (their colour and
      shape words; "the star" in two videos is one subject), distinct first queries / subjects: 1.0
      when no two subjects got the same query. Questions that share a subject may share a query, which
      ``distinct_query_share`` counts against them.
    - ``heldout_reward``: the GRPO reward (default weights) of each held-out episode, averaged.
    - ``answers_right``: share of questions answered right (as ``foveate eval`` scores the predictions).
    - ``call_errors``: tool calls that were refused (did not parse, bad arguments), as a share of all calls.
    - ``answer_words_right``: over the questions with options, the share whose answer's words are the
      gold option's (case and spacing aside), whatever letter it gave: what the controller saw and said
      (for time-span options, a span or handle that picks the gold option).
    - ``letter_follows_words``: over the answers whose words are one of the options, the share that pick
      that option (below 1.0 only when a letter given beside the words names another option: the
      letter wins, agent/answer.py).
    """
    from foveate.agent.answer import LETTERS, matches_gold, time_span
    from foveate.agent.trajectory import read_trajectories
    from foveate.evals.metrics import temporal_iou
    from foveate.training.config import RewardWeights

    if not trace.is_file():
        return {}
    w = RewardWeights()
    found = executed = calls = failed = n = named = about_one = right = 0
    with_options = words_right = worded = followed = 0
    queries: dict[str, str] = {}
    by_subject: dict[tuple[str, ...], str] = {}
    rewards = []
    for traj in read_trajectories(trace):
        n += 1
        turns = [t for s in traj.steps for t in s.tool_turns]
        ok = [t for t in turns if t.name and t.error is None]
        calls += len(turns)
        failed += sum(1 for t in turns if t.error is not None)
        windows = [_looked_window(t) for t in ok if t.name in ("zoom", "dense_sample") and t.frames_spent > 0]
        found += temporal_iou(list(windows), list(traj.gold_evidence or [])) > 0
        executed += len(ok)
        first = next((t for t in ok if t.name == "retrieve"), None)
        if first is not None and traj.question not in queries:
            queries[traj.question] = " ".join(str((first.arguments or {}).get("query", "")).lower().split())
            subject = _subject_words(traj.question)
            if 1 <= len(subject) <= 2:
                about_one += 1
                by_subject.setdefault(tuple(subject), queries[traj.question])
                named += set(subject) <= set(re.findall(r"[a-z]+", queries[traj.question]))
        answer = traj.answer if traj.answer is not None and traj.answer.valid else None
        correct = matches_gold(answer, traj.gold, traj.options)
        right += correct
        if traj.options and traj.gold:
            options = [_norm(o) for o in traj.options]
            with_options += 1
            said = _norm(answer.text) if answer is not None else None
            spans = all(time_span(o) for o in traj.options)  # a when-answer names a time, not an option's words
            words_right += said == options[LETTERS.index(traj.gold.strip().upper()[:1])] or (spans and correct)
            if said is not None and options.count(said) == 1:
                worded += 1
                followed += answer.choice == LETTERS[options.index(said)]
        fmt = 0.0 if answer is None else (0.5 if any(t.error for t in turns) else 1.0)
        iou = temporal_iou(list(answer.evidence), list(traj.gold_evidence or [])) if answer is not None else 0.0
        tool_frames = sum(t.frames_spent for t in turns)
        rewards.append(
            w.correct * correct + w.format * fmt + w.evidence_iou * iou - w.frame_penalty * tool_frames / max_frames
        )
    return {
        "looked_at_evidence": found / n if n else None,
        "executed_tool_calls": executed / n if n else None,
        "distinct_query_share": len(set(queries.values())) / len(queries) if queries else None,
        "query_names_subject": named / about_one if about_one else None,
        "distinct_subject_queries": len(set(by_subject.values())) / len(by_subject) if by_subject else None,
        "heldout_reward": sum(rewards) / n if n else None,
        "answers_right": right / n if n else None,
        "call_errors": failed / calls if calls else None,
        "answer_words_right": words_right / with_options if with_options else None,
        "letter_follows_words": followed / worded if worded else None,
    }


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _subject_words(question: str) -> list[str]:
    """The colour and shape words of a question about the synthetic world (one sprite: one or two words)."""
    from foveate.evals.synthetic.events import COLOURS, SHAPES

    vocab = set(COLOURS) | set(SHAPES)
    return [w for w in re.findall(r"[a-z]+", question.lower()) if w in vocab]


def _looked_window(turn) -> tuple[float, float]:
    """The window a zoom / dense_sample turn looked at (clip handles resolved); traces written before
    turns recorded it give it only in their arguments."""
    if turn.window is not None:
        return turn.window
    return float(turn.arguments["start"]), float(turn.arguments["end"])


def answer_test(
    out: Path,
    runs: list[tuple[str, Path, str]],
    embedder: str,
    agent,
    ingest_config,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> list[Path]:
    """One predictions file per run, OUT/preds/NAME.jsonl (resumable: `run_batch` skips answered ids;
    ``workers``: :func:`answer_split`)."""
    return answer_split(out, "test", runs, embedder, agent, ingest_config, out / "preds", progress, workers)


def answer_split(
    out: Path,
    split: str,
    runs: list[tuple[str, Path, str]],
    embedder: str,
    agent,
    ingest_config,
    preds: Path,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> list[Path]:
    """Answer OUT/SPLIT's questions once per run into PREDS/NAME.jsonl and PREDS/NAME.trace.jsonl, greedily,
    with the agent's frame budget (resumable: `run_batch` skips answered ids). ``progress(answers, runs x
    questions)`` as answers come in, answers of an earlier call counted.

    ``workers`` > 1: that many processes answer one run each at a time, each with its share of this
    process's torch threads (on a CPU, decoding a small controller keeps about one core busy). The videos
    are indexed here first, so the workers read the cache and never write it.
    """
    from foveate.agent.batch import final_rows
    from foveate.agent.records import read_manifest

    rows = read_manifest(out / split / "manifest.jsonl")
    ids = {r.id for r in rows}
    total = len(runs) * len(rows)
    paths = [preds / f"{name}.jsonl" for name, _, _ in runs]

    def answered_so_far() -> int:  # ids with a row in the runs' files (a line still being written skipped)
        return sum(len(final_rows(p).keys() & ids) for p in paths)

    workers = max(1, min(workers, len(runs)))
    if workers == 1:
        memories: dict[str, object] = {}
        done = answered_so_far()  # a resumed run's answers

        def answered(_row) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(min(done, total), total)

        for run in runs:
            _answer_run(out, rows, run, embedder, agent, ingest_config, preds, memories, answered)
        return paths

    import multiprocessing
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    import torch

    from foveate.memory.video_memory import ingest

    for video in dict.fromkeys(r.video for r in rows):
        with contextlib.suppress(Exception):  # a video that cannot be indexed: each worker writes its error rows
            ingest(video, cache_root=out / "cache", embedder=embedder, config=ingest_config)
    threads = max(1, torch.get_num_threads() // workers)
    shown = -1
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [
            pool.submit(_answer_run, out, rows, run, embedder, agent, ingest_config, preds, threads=threads)
            for run in runs
        ]
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=1.0, return_when=FIRST_EXCEPTION)
            answers = answered_so_far()
            if progress is not None and answers != shown:
                progress(min(answers, total), total)
                shown = answers
            if any(f.exception() for f in finished):
                for f in pending:
                    f.cancel()  # runs not started yet; a run under way finishes its question set
                break
        for f in futures:
            if not f.cancelled():
                f.result()  # a worker's error, raised here
    return paths


def _answer_run(
    out: Path,
    rows: list,
    run: tuple[str, Path, str],
    embedder: str,
    agent,
    ingest_config,
    preds: Path,
    memories: dict[str, object] | None = None,
    on_row: Callable[[Any], None] | None = None,
    threads: int | None = None,
) -> Path:
    """Answer the manifest ``rows`` with one run ``(name, controller, policy)`` (see :func:`answer_split`);
    ``memories`` holds the videos indexed so far (shared by the runs of one process)."""
    from foveate.agent.backends import load_controller
    from foveate.agent.batch import run_batch
    from foveate.memory.video_memory import ingest

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    memories = {} if memories is None else memories

    def load(video: str):
        if video not in memories:
            memories[video] = ingest(video, cache_root=out / "cache", embedder=embedder, config=ingest_config)
        return memories[video]

    name, controller, policy = run
    path = preds / f"{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    ctl = load_controller(str(controller), max_new_tokens=128)  # an answer or a tool call takes < 100 tokens
    run_batch(
        rows,
        path,
        ctl,
        load,
        policy,
        agent,
        n_frames=agent.max_frames,
        trace=preds / f"{name}.trace.jsonl",
        on_row=on_row,
        baseline_format="episode",  # the trained controllers know only agent episodes
    )
    return path


def select_grpo(
    out: Path,
    steps: int,
    embedder: str,
    agent,
    ingest_config,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> dict:
    """Keep the GRPO snapshot with the best mean reward on the val split (ties: the later step).

    The snapshots are TRL's checkpoints (OUT/grpo/checkpoints/checkpoint-N) and the last step
    (OUT/grpo/controller); the SFT controller answers the same questions as a reference, not a candidate,
    so the chosen policy is always one that GRPO trained. The chosen one is written as a full controller
    to OUT/grpo/selected, its figures and every candidate's to OUT/grpo/selection.json. ``workers``:
    :func:`answer_split`.
    """
    import shutil

    grpo = out / "grpo"
    found = sorted(int(p.name.rsplit("-", 1)[1]) for p in (grpo / "checkpoints").glob("checkpoint-*"))
    candidates = [(f"step{n}", grpo / "checkpoints" / f"checkpoint-{n}") for n in found if n < steps]
    candidates.append((f"step{steps}", grpo / "controller"))
    runs = [("sft", out / "sft" / "controller", "agent")] + [(name, path, "agent") for name, path in candidates]
    answer_split(out, "val", runs, embedder, agent, ingest_config, grpo / "val", progress, workers)
    figures = {}
    for name, _, _ in runs:
        m = trace_metrics(grpo / "val" / f"{name}.trace.jsonl", agent.max_frames)
        figures[name] = {k: m.get(k) for k in ("heldout_reward", "looked_at_evidence", "answer_words_right")}
        figures[name]["accuracy"] = m.get("answers_right")
    best_name, best_path = max(reversed(candidates), key=lambda c: figures[c[0]]["heldout_reward"])
    tmp = grpo / "selected.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(grpo / "controller", tmp)  # processor, settings, config: those of every snapshot
    shutil.copy2(best_path / "model.safetensors", tmp / "model.safetensors")
    shutil.rmtree(grpo / "selected", ignore_errors=True)
    tmp.rename(grpo / "selected")
    selection = {
        "split": "val",
        "questions": len(_manifest_ids(out / "val" / "manifest.jsonl")),
        "selected_step": int(best_name.removeprefix("step")),
        "candidates": figures,
    }
    (grpo / "selection.json").write_text(json.dumps(selection, indent=1))
    return selection


def retrieval_localization(out: Path, embedder: str, ingest_config) -> dict:
    """A reference for where to look without a controller: the top clip that ``VideoMemory.search``
    returns for the question's text, cited as evidence (mean IoU with the gold evidence, share overlapping it).

    ``subject_top1`` / ``subject_top5``: searched instead by the question's subject as the SFT oracle's
    query names it (``a blue cross``: the kind of query the controller learns to write), the share whose
    top clip / one of whose top five clips overlaps the first gold evidence span.
    """
    from foveate.agent.records import read_manifest
    from foveate.evals.metrics import overlaps, temporal_iou
    from foveate.memory.video_memory import ingest
    from foveate.training.assets import event_log
    from foveate.training.oracle import _subject, focus_span

    rows = [r for r in read_manifest(out / "test" / "manifest.jsonl") if r.evidence]
    ious, top1, top5 = [], 0, 0
    for video in dict.fromkeys(r.video for r in rows):  # one memory per video, in manifest order
        memory = ingest(video, cache_root=out / "cache", embedder=embedder, config=ingest_config)
        log = event_log(out / "test", video)
        for row in (r for r in rows if r.video == video):
            hit = memory.search(row.question, 1)[0]
            ious.append(temporal_iou([(hit.start_seconds, hit.end_seconds)], [tuple(g) for g in row.evidence]))
            first = focus_span(row, log)
            hits = memory.search(_subject(row, log, first), 5)
            over = [overlaps((h.start_seconds, h.end_seconds), first) for h in hits]
            top1 += bool(over) and over[0]
            top5 += any(over)
    return {
        "n": len(rows),
        "evidence_iou": sum(ious) / len(ious) if ious else None,
        "looked_at_evidence": sum(i > 0 for i in ious) / len(ious) if ious else None,
        "subject_top1": top1 / len(rows) if rows else None,
        "subject_top5": top5 / len(rows) if rows else None,
    }
