"""Run configurations for ``foveate train sft|grpo|clip``, loaded from YAML.

Why a pydantic top level with a ``trl:`` mapping, rather than subclassing TRL's configs: TRL's
``SFTConfig``/``GRPOConfig`` are dataclasses of ~200 fields parsed by ``HfArgumentParser``; a
pydantic model cannot subclass them, and mirroring their fields here would be a second copy that
drifts with every TRL release. So our own settings (world, model, LoRA, rewards, ...) are frozen
pydantic models with ``extra="forbid"``, and everything the trainer itself reads goes, verbatim,
into ``trl:``, which is validated by constructing TRL's own config when the YAML is loaded (a typo
there fails at load time with TRL's message, not hours into a run).

Relative paths in a YAML file resolve against the folder of that file, so the packaged example
configs work from any working directory. Outputs go to ``--output-dir`` (or ``output_dir:``, or
``runs/<config name>`` under the working directory).
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from foveate.agent.config import AgentConfig
from foveate.memory.config import IngestConfig
from foveate.memory.errors import FoveateError
from foveate.training.oracle import OracleConfig

TINY = "tiny"  # model / embedder keyword: build the tiny local model into the output folder
TINY_RESNET = "tiny-resnet"  # embedder keyword: the tiny OpenCLIP model with a ModifiedResNet image tower


class ConfigError(FoveateError):
    """A training config file cannot be read or is invalid."""


def _base(info: ValidationInfo) -> Path:
    return Path((info.context or {}).get("base_dir", "."))


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    return value if value.is_absolute() else (_base(info) / value).resolve()


def _resolve_spec(value: str, info: ValidationInfo) -> str:
    """A model spec that names an existing relative folder becomes absolute; hub ids and ``tiny`` stay."""
    prefix = "openclip:" if value.startswith("openclip:") else ""
    rest = value[len(prefix) :]
    if rest in (TINY, TINY_RESNET) or Path(rest).is_absolute():
        return value
    candidate = _base(info) / rest
    if candidate.exists() or rest.startswith((".", "~")):
        return prefix + str(candidate.resolve())
    return value


RelPath = Annotated[Path, AfterValidator(_resolve_path)]
ModelSpec = Annotated[str, AfterValidator(_resolve_spec)]


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WorldSection(Section):
    dir: RelPath | None = Field(
        default=None,
        description="An existing synthetic world (manifest.jsonl, events/, videos/); "
        "None generates one into OUTPUT/world.",
    )
    videos: int = Field(default=4, ge=1, description="Videos to generate when dir is None.")
    minutes: float = Field(default=1.0, gt=0, le=120, description="Length of each generated video, minutes.")
    seed: int = Field(default=0, description="Seed offset inside the split's seed range.")
    split: Literal["train", "val", "test"] = Field(
        default="train", description="Split of the generated world (disjoint seeds)."
    )
    questions_per_video: int = Field(default=6, ge=1, description="Questions per generated video.")
    fps: int = Field(default=10, ge=1, le=60, description="Frame rate of generated videos.")
    width: int = Field(default=320, ge=32, description="Width of generated videos, pixels.")
    height: int = Field(default=240, ge=32, description="Height of generated videos, pixels.")
    max_questions: int | None = Field(
        default=None, ge=1, description="Use at most this many questions (in manifest order)."
    )


class ModelSection(Section):
    path: ModelSpec = Field(
        description="Controller to start from: a Hugging Face id, a local directory, "
        "or 'tiny' (built into OUTPUT/models/controller)."
    )
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        default="auto", description="Weights dtype; auto is bfloat16 on CUDA, float32 on CPU."
    )
    attn_implementation: str | None = Field(
        default=None,
        description="transformers attention implementation (e.g. 'sdpa', 'flash_attention_2'); "
        "None keeps the default.",
    )
    train_vision: bool = Field(
        default=False, description="Also train the vision tower (frozen otherwise, with or without LoRA)."
    )


class LoraSection(Section):
    enabled: bool = Field(
        default=True,
        description="Train a LoRA adapter (merged into the weights when saving); False fine-tunes all weights.",
    )
    r: int = Field(default=16, ge=1, description="LoRA rank.")
    alpha: int = Field(default=32, ge=1, description="LoRA alpha.")
    dropout: float = Field(default=0.05, ge=0, lt=1, description="LoRA dropout.")
    target_modules: list[str] | str = Field(
        default="all-linear", description="Modules to adapt: a list of names, or 'all-linear'."
    )

    def peft_config(self, train_vision: bool = False):
        from peft import LoraConfig

        # 'all-linear' would also wrap the vision tower; keep it frozen unless asked:
        # the controller learns where to look.
        exclude = None if train_vision else r".*(visual|vision_tower|vision_model).*"
        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=self.target_modules,
            exclude_modules=exclude,
            task_type="CAUSAL_LM",
        )


class RunConfig(Section):
    """Fields every controller-training run shares."""

    output_dir: RelPath | None = Field(
        default=None, description="Where checkpoints, data and logs go; --output-dir overrides it."
    )
    seed: int = Field(default=0, description="Seed for data sampling and training.")
    world: WorldSection = Field(default_factory=WorldSection, description="The synthetic world to train on.")
    model: ModelSection = Field(description="The controller to start from.")
    lora: LoraSection = Field(default_factory=LoraSection, description="LoRA adapter settings.")
    embedder: ModelSpec = Field(
        default="openclip:ViT-B-32/laion2b_s34b_b79k",
        description="Clip embedder used to index the videos (the retrieve tool): openclip:SPEC, 'tiny' or "
        "'tiny-resnet'.",
    )
    agent: AgentConfig = Field(
        default_factory=AgentConfig,
        description="Agent budgets and overview size: the same settings `foveate ask` uses.",
    )
    ingest: IngestConfig = Field(default_factory=IngestConfig, description="Video ingest settings.")
    trl: dict[str, Any] = Field(
        default_factory=dict, description="Passed verbatim to TRL's SFTConfig/GRPOConfig (validated by TRL)."
    )


class SFTDataSection(Section):
    oracle_paths_per_question: int = Field(
        default=1, ge=0, description="Oracle trajectories per question (different seeded paths)."
    )
    trajectories: list[RelPath] = Field(
        default_factory=list,
        description="Recorded trajectory JSONL files (foveate batch --trace) to filter by correctness.",
    )
    max_examples: int | None = Field(default=None, ge=1, description="Keep at most this many examples.")
    oracle: OracleConfig = Field(default_factory=OracleConfig, description="How varied the oracle's paths are.")
    cache_rendered: bool = Field(
        default=False, description="Keep rendered examples in memory (small datasets trained for many epochs)."
    )


class SFTRunConfig(RunConfig):
    data: SFTDataSection = Field(default_factory=SFTDataSection, description="Where SFT examples come from.")
    shared_prefix: bool = Field(
        default=True,
        description="Compute the prompt a batch's examples share (system prompt, tool block) once per batch and the "
        "lm head on labelled positions only (training/prefix.py; the same loss as TRL's forward over the padded "
        "batch). Used when a batch holds more than one example, in one process, without gradient checkpointing; "
        "TRL's own loss otherwise.",
    )

    @model_validator(mode="after")
    def _check_trl(self) -> SFTRunConfig:
        validate_trl("sft", self.trl)
        return self


class RewardWeights(Section):
    correct: float = Field(
        default=1.0, description="Weight of answer correctness (1 when the chosen option or text is right)."
    )
    format: float = Field(
        default=0.2, description="Weight of format validity (a parseable final answer, no malformed tool calls)."
    )
    evidence_iou: float = Field(
        default=0.5, description="Weight of the temporal IoU between cited and true evidence spans."
    )
    frame_penalty: float = Field(
        default=0.2, description="Weight of the frame-budget penalty (minus the fraction of the budget spent)."
    )


class GRPORunConfig(RunConfig):
    rewards: RewardWeights = Field(default_factory=RewardWeights, description="Reward components and their weights.")
    stop_after_steps_without_tool_calls: int = Field(
        default=5, ge=1, description="Fail when no tool call has parsed for this many consecutive generation rounds."
    )
    generation: Literal["auto", "vllm", "transformers"] = Field(
        default="auto", description="Rollout engine: auto uses vLLM when CUDA and vllm are available."
    )
    warm_start_sft: RelPath | None = Field(
        default=None, description="An SFT config to run first (into OUTPUT/sft); its checkpoint replaces model.path."
    )

    @model_validator(mode="after")
    def _check_trl(self) -> GRPORunConfig:
        validate_trl("grpo", self.trl)
        return self


class ClipRunConfig(Section):
    output_dir: RelPath | None = Field(
        default=None, description="Where the tuned embedder and metrics go; --output-dir overrides it."
    )
    seed: int = Field(default=0, description="Seed for pair sampling and training.")
    embedder: ModelSpec = Field(
        default="openclip:ViT-B-32/laion2b_s34b_b79k",
        description="Embedder to start from: openclip:SPEC, 'tiny' or 'tiny-resnet' (its image tower a ResNet).",
    )
    world: WorldSection = Field(default_factory=WorldSection, description="Training world.")
    eval_world: WorldSection = Field(
        default_factory=lambda: WorldSection(split="val", videos=1), description="Held-out world for R@1."
    )
    frames_per_event: int = Field(default=3, ge=1, le=16, description="Frames sampled inside each captioned event.")
    frame_max_side: int = Field(default=224, ge=32, description="Longer side of decoded frames, pixels.")
    epochs: int = Field(default=5, ge=1, description="Passes over the training pairs.")
    batch_size: int = Field(default=32, ge=2, description="Pairs per contrastive batch (the negatives).")
    learning_rate: float = Field(default=1e-5, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(default=0.1, ge=0, description="AdamW weight decay.")
    lr_schedule: Literal["constant", "cosine"] = Field(
        default="constant",
        description="'cosine': linear warmup over warmup_steps, then cosine decay to zero by the last step "
        "(CLIP's schedule); 'constant': the learning rate throughout.",
    )
    warmup_steps: int = Field(default=0, ge=0, description="Linear warmup steps of the cosine schedule.")
    train_logit_scale: bool = Field(default=True, description="Learn the temperature (CLIP's logit_scale).")
    short_captions: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="Share of pairs whose text is a shorter true description of the frame ('a red star', 'a star', "
        "'red shapes': the words retrieval queries use) instead of the full caption; 0 trains on full captions only.",
    )
    eval_clip_seconds: float = Field(
        default=4.0, gt=0, description="Clip length of the held-out index R@1 is measured on."
    )


class PretrainMix(Section):
    """Weights of the task families; reading examples are one agent episode cut after the turn they train."""

    search: float = Field(
        default=1.0, ge=0, description="Question -> retrieve call whose query copies the question's subject."
    )
    look: float = Field(
        default=1.0,
        ge=0,
        description="... -> retrieve result and a thought naming a clip -> zoom on that clip's handle (or times).",
    )
    cite: float = Field(
        default=1.0,
        ge=0,
        description="... -> zoom result -> the answer, citing the handle (or span); for one-event questions first "
        "what the frames show, then the option it names and that option's letter.",
    )
    caption: float = Field(default=1.0, ge=0, description="A world frame -> the world's caption of it.")
    ground: float = Field(
        default=0.0,
        ge=0,
        description="A whole episode about a world question, frames rendered from its event log: the retrieve "
        "result's thumbnails show which clip holds the subject, the zoom's frames show the answer.",
    )

    @model_validator(mode="after")
    def _check_some(self) -> PretrainMix:
        if sum(self.weights.values()) <= 0:
            raise ValueError("mix: at least one of search, look, cite, caption and ground must be > 0")
        return self

    @property
    def weights(self) -> dict[str, float]:
        return {
            "search": self.search,
            "look": self.look,
            "cite": self.cite,
            "caption": self.caption,
            "ground": self.ground,
        }


class ReadTasks(Section):
    max_clips: int = Field(default=5, ge=1, le=10, description="Retrieve results list 1 to this many clips.")
    p_second_search: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="Probability of a second retrieve round (its handles continue the first's).",
    )
    p_times: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="Probability that a look names its window by times rather than by handle "
        "(the answer then cites the span).",
    )
    p_by_rank: float = Field(
        default=0.3, ge=0, le=1, description="Probability that the thought names the clip by rank rather than by span."
    )
    p_bare: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Probability that a training episode drops the system prompt and tool block (~1,000 tokens): "
        "from random init, attention finds the text to copy far sooner in a short context. Held-out episodes "
        "always have the agent's full prompt.",
    )
    heldout_fraction: float = Field(
        default=0.25,
        gt=0,
        lt=1,
        description="Fraction of colour+shape subjects never trained on; held-out episodes ask about them.",
    )
    p_order: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Probability that an episode asks which of five subjects appeared first (or last): one "
        "retrieve of all five by letter, whose result lists their best clips in time order, then the answer "
        "giving the letter on its first (last) line.",
    )
    thought_names_query: bool = Field(
        default=False,
        description="The last look's thought names what the question asks about ('shows the triangle' in a "
        "colour question) rather than the subject drawn for the episode ('shows the white triangle'), whose "
        "colour is drawn apart from the answer's: then most colour episodes' thoughts name a colour other "
        "than the one the description and answer give. Off keeps earlier runs' data the same.",
    )
    describe_unseen_motion: bool = Field(
        default=True,
        description="Without a dense_sample in the episode, the description still names a direction (a random "
        "one: nothing shows it) and a direction question's answer is described as that guess. Off: no direction "
        "is named unless the motion line shows it, so the word after 'moving' is always one to copy "
        "(OracleConfig.describe_unseen_motion for the world's episodes). Drawing the same random numbers either way.",
    )


class CaptionTasks(Section):
    width: int = Field(default=160, ge=64, le=640, multiple_of=2, description="Frame width, pixels.")
    height: int = Field(default=120, ge=64, le=480, multiple_of=2, description="Frame height, pixels.")
    minutes: float = Field(default=1.0, gt=0, le=10, description="Length of the world logs frames are drawn from.")
    p_varied: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of captions asked and answered in other words: another prompt, before or after the "
        "frame, and a lead-in before the caption ('The frames show a red star ...'). With one wording a controller "
        "may learn to read the colour at a fixed distance from the frame, and then does not read a zoom's frames "
        "in an episode, where that distance differs.",
    )
    varied_without_motion: bool = Field(
        default=False,
        description="The varied captions (p_varied) leave out the sprite's direction ('The frames show a red star "
        "over ...'): one frame does not show it, and a varied caption led in as an episode's description "
        "('The frames show ') may teach that the direction after 'moving' is not in the context. Off in the presets "
        "(their documented runs were made without it); drawing the same random numbers either way.",
    )


class GroundTasks(Section):
    clip_seconds: float = Field(
        default=4.0, gt=0, le=60, description="Clip length of the retrieve results (the clip index's clip_seconds)."
    )
    thumbnail_max_side: int = Field(
        default=64, ge=16, le=448, description="Longest side of the retrieve result's thumbnails (the ingest's)."
    )
    max_steps: int = Field(
        default=4,
        ge=4,
        description="The agent's max_steps the oracle plans for (retrieve, look, answer, and one spare).",
    )
    max_frames: int = Field(default=16, ge=4, description="The agent's frame budget the oracle plans for.")
    oracle: dict[str, Any] = Field(
        default_factory=lambda: {"p_thought": 1.0, "p_dense": 0.0},
        description="OracleConfig fields of the oracle that writes the episodes (always look_at: retrieved).",
    )


class PretrainRunConfig(Section):
    output_dir: RelPath | None = Field(
        default=None, description="Where the controller and metrics.json go; --output-dir overrides it."
    )
    seed: int = Field(default=0, description="Seed for the generated data and training.")
    model: ModelSection = Field(description="The controller to pretrain (all weights are trained, no LoRA).")
    steps: int = Field(default=600, ge=1, description="Optimizer steps (each on freshly generated examples).")
    batch_size: int = Field(default=8, ge=1, description="Examples per step.")
    learning_rate: float = Field(default=3e-3, gt=0, description="AdamW peak learning rate.")
    vision_learning_rate: float | None = Field(
        default=None,
        gt=0,
        description="Peak learning rate of the vision tower and its merger (None: learning_rate). Seeing small "
        "sprites needs a lower rate than reading learns at.",
    )
    read_learning_rate: float | None = Field(
        default=None,
        gt=0,
        description="Peak learning rate of the language model once reading starts (after caption_first_steps; "
        "None: learning_rate), while the vision tower keeps its own. Reading tolerates a higher rate than seeing.",
    )
    weight_decay: float = Field(default=0.0, ge=0, description="AdamW weight decay.")
    warmup_steps: int = Field(default=20, ge=0, description="Linear warm-up steps.")
    lr_schedule: Literal["constant", "cosine"] = Field(
        default="cosine",
        description="After warm-up: constant, or cosine decay to a tenth of the peak (over the steps after "
        "caption_first_steps, which run at the peak).",
    )
    max_grad_norm: float = Field(default=1.0, gt=0, description="Gradient clipping norm.")
    mix: PretrainMix = Field(default_factory=PretrainMix, description="Task families and their weights.")
    read: ReadTasks = Field(default_factory=ReadTasks, description="How reading episodes are drawn.")
    caption: CaptionTasks = Field(default_factory=CaptionTasks, description="How captioned frames are drawn.")
    ground: GroundTasks = Field(default_factory=GroundTasks, description="How grounded episodes are drawn.")
    caption_first_steps: int = Field(
        default=0,
        ge=0,
        description="The first this many of ``steps`` train on captioned frames only (seeing first: a caption "
        "step costs a fraction of a reading step, and the mix alone shows too few frames to learn colours).",
    )
    eval_examples: int = Field(default=48, ge=1, description="Held-out examples per task family.")
    eval_every: int = Field(
        default=0,
        ge=0,
        description="Score the held-out examples every this many steps too (0: before and after only).",
    )
    log_every: int = Field(default=10, ge=1, description="Log the mean training loss every this many steps.")
    draw_workers: int = Field(
        default=0,
        ge=0,
        description="Processes that draw and render training batches ahead of the optimiser, each step's batch "
        "from a generator seeded by (seed, step): the same batches for any number of workers, and other batches "
        "than 0 gives (0: the training loop draws every batch from one generator, on its own core). For a GPU "
        "machine: one core needs ~0.4 s for a mixed batch of 32.",
    )
    checkpoint_every: int = Field(
        default=200,
        ge=0,
        description="Save the whole training state (weights, optimizer, schedule, random generators) to "
        "OUT/resume.pt every this many steps, so an interrupted run resumes from there with the same command "
        "and ends as an uninterrupted one would (0: never). Removed when the run finishes.",
    )

    @model_validator(mode="before")
    @classmethod
    def _train_vision_for_captions(cls, data: Any) -> Any:
        """Captions train the vision tower, so it trains unless the config says otherwise."""
        if isinstance(data, dict) and isinstance(data.get("model"), dict) and "train_vision" not in data["model"]:
            mix = data.get("mix")
            if isinstance(mix, dict):
                seeing = mix.get("caption", 1.0) or mix.get("ground", 0.0)
            else:
                seeing = getattr(mix, "caption", 1.0) or getattr(mix, "ground", 0.0)
            seeing = seeing or data.get("caption_first_steps", 0)
            data = {**data, "model": {**data["model"], "train_vision": bool(seeing)}}
        return data

    @model_validator(mode="after")
    def _check_vision(self) -> PretrainRunConfig:
        if (self.mix.caption > 0 or self.mix.ground > 0 or self.caption_first_steps) and not self.model.train_vision:
            raise ValueError(
                "captions and grounded episodes train the vision tower; set model.train_vision: true "
                "(or mix.caption: 0, mix.ground: 0 and caption_first_steps: 0 for reading only)"
            )
        if self.caption_first_steps >= self.steps:
            raise ValueError(f"caption_first_steps ({self.caption_first_steps}) must be below steps ({self.steps})")
        return self


CONFIGS: dict[str, type[Section]] = {
    "sft": SFTRunConfig,
    "grpo": GRPORunConfig,
    "clip": ClipRunConfig,
    "pretrain": PretrainRunConfig,
}


def trl_config(kind: str, values: dict[str, Any], output_dir: Path, **ours: Any):
    """Build TRL's SFTConfig/GRPOConfig from the ``trl:`` mapping plus the fields we set ourselves."""
    import trl

    cls = {"sft": trl.SFTConfig, "grpo": trl.GRPOConfig}[kind]
    if "bf16" not in values and "fp16" not in values and (values.get("use_cpu") or not _cuda()):
        ours = {"bf16": False, **ours}  # TRL defaults to bf16, which on CPU is emulated and several times slower
    clash = sorted(set(values) & ({"output_dir"} | set(ours)))
    if clash:
        raise ValueError(f"trl: {', '.join(clash)} is set by foveate itself; remove it from the trl: section")
    values = _checkpointing_renamed(cls, values)
    try:
        return cls(output_dir=str(output_dir), **{**values, **ours})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"trl: {str(exc).splitlines()[0]}") from None


def _checkpointing_renamed(cls, values: dict[str, Any]) -> dict[str, Any]:
    """transformers 5 renamed ``gradient_checkpointing(_kwargs)`` to ``activation_checkpointing(_kwargs)`` and warns
    at the old name, which TRL's configs still default to True: with the new name present, pass the config's value
    (or TRL's default) under it, so the run is the same and says nothing."""
    fields = getattr(cls, "__dataclass_fields__", {})
    if "activation_checkpointing" not in fields:
        return values
    values = dict(values)
    for old, new in (
        ("gradient_checkpointing", "activation_checkpointing"),
        ("gradient_checkpointing_kwargs", "activation_checkpointing_kwargs"),
    ):
        if old in values and new in values:
            raise ValueError(f"trl: set {new} or its old name {old}, not both")
        if old in values:
            values[new] = values.pop(old)
        elif new not in values and old in fields and fields[old].default not in (None, dataclasses.MISSING):
            values[new] = fields[old].default
    return values


@contextlib.contextmanager
def old_checkpointing_name_quiet():
    """TRL and PEFT still ask a model ``is_gradient_checkpointing`` (LoRA wrapping, GRPO's generation), which
    transformers 5 answers with a FutureWarning naming ``is_activation_checkpointing``: nothing a user can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def quiet_progress(values: dict[str, Any], callbacks: list | None) -> dict[str, Any]:
    """With our own progress callback, turn off the Trainer's tqdm bar (unless the config sets it)."""
    return {"disable_tqdm": True} if callbacks and "disable_tqdm" not in values else {}


def drop_log_printer(trainer, callbacks: list | None) -> None:
    """With our own progress callback, the Trainer's per-log dict printing goes (logs stay in train_log.json)."""
    if callbacks:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _type_matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits a dataclass field annotation; annotations too complex to check pass."""
    import types
    import typing

    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is list or hint is list:
        return isinstance(value, list)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return True


def _check_trl_types(cls: type, values: dict[str, Any]) -> None:
    """TRL's configs are dataclasses and do not check types, so ``num_train_epochs: abc`` would only fail
    inside the Trainer, after the world was built; check each value against its field's annotation now."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    for name, value in values.items():
        if name in fields and not _type_matches(value, hints.get(name, Any)):
            expected = hints[name].__name__ if isinstance(hints[name], type) else str(hints[name])
            raise ValueError(f"trl.{name}: {value!r} is not a valid {expected.replace('typing.', '')}")


def validate_trl(kind: str, values: dict[str, Any]) -> None:
    """TRL checks the values; as if on CPU, so a GPU config validates on any machine
    (devices are checked at run time)."""
    import tempfile

    import trl

    _check_trl_types({"sft": trl.SFTConfig, "grpo": trl.GRPOConfig}[kind], values)
    with tempfile.TemporaryDirectory() as tmp:
        trl_config(kind, {**values, "use_cpu": True}, Path(tmp))


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``["trl.learning_rate=3e-4", "world.videos=4"]`` set into a nested config mapping (values parsed as YAML)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. trl.learning_rate=3e-4")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML") from None
        if isinstance(value, str):  # YAML 1.1 reads 3e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        node = data
        *parents, leaf = key.strip().split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part} is not a section")
            node = child
        node[leaf] = value
    return data


def load_config(path: str | Path, kind: str, overrides: list[str] | None = None) -> Section:
    """Read and validate a YAML config of ``kind`` (sft, grpo or clip), with ``KEY=VALUE`` overrides;
    errors name the file."""
    path = Path(path)
    if kind not in CONFIGS:
        raise ConfigError(f"unknown training kind {kind!r}; valid: {', '.join(CONFIGS)}")
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    data = apply_overrides(data, overrides or [])
    try:
        return CONFIGS[kind].model_validate(data, context={"base_dir": path.resolve().parent})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "config"
        raise ConfigError(f"{path}: {where}: {err['msg']}") from None


def output_dir_for(config: Section, config_path: str | Path, override: str | Path | None) -> Path:
    """``--output-dir``, else the config's ``output_dir``, else ``runs/<config name>`` in the working directory."""
    if override is not None:
        return Path(override).resolve()
    if getattr(config, "output_dir", None) is not None:
        return Path(config.output_dir)
    return (Path("runs") / Path(config_path).stem).resolve()


def packaged_configs() -> dict[str, Path]:
    """The example configs shipped in training/configs/, by name."""
    folder = Path(__file__).parent / "configs"
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}
