"""Supervised fine-tuning of the controller with TRL's ``SFTTrainer``.

Data: oracle episodes on the synthetic world and/or recorded trajectories filtered by
correctness, replayed through the agent loop (training/episodes.py) and stored as conversations
plus PNG images. Batches are rendered exactly as the agent renders them, tool schemas included,
with the loss on assistant tokens only (training/collator.py); TRL's own ``assistant_only_loss``
is left off because its vision collator renders without tool schemas. Output: OUTPUT/controller,
a merged checkpoint that ``foveate ask --controller OUTPUT/controller`` loads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from foveate.training.config import (
    SFTRunConfig,
    drop_log_printer,
    old_checkpointing_name_quiet,
    quiet_progress,
    trl_config,
)

logger = logging.getLogger(__name__)


@dataclass
class SFTResult:
    controller: Path
    examples: int
    losses: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        first, last = (self.losses[0], self.losses[-1]) if self.losses else (None, None)
        return {"controller": str(self.controller), "examples": self.examples, "first_loss": first, "last_loss": last}


def build_examples(
    config: SFTRunConfig, out: Path, memories, world: Path, progress: Callable[[int, int], None] | None = None
) -> list[dict]:
    """Oracle and recorded episodes, written to OUTPUT/data; returns the stored rows. ``progress(questions done,
    questions)`` follows the oracle's questions."""
    from itertools import chain, islice

    from foveate.training.assets import event_log, world_rows
    from foveate.training.episodes import oracle_episodes, recorded_episodes, save_examples

    rows = [r for r in world_rows(world, config.world.max_questions) if r.evidence and r.answer]
    sources = [
        oracle_episodes(
            rows,
            memories,
            lambda v: event_log(world, v),
            config.agent,
            config.data.oracle,
            config.data.oracle_paths_per_question,
            config.seed,
            progress,
        )
    ]
    sources += [recorded_episodes(p, memories, config.agent) for p in config.data.trajectories]
    episodes = islice(chain(*sources), config.data.max_examples)
    examples = save_examples(episodes, out / "data")
    if not examples:
        raise ValueError(
            "no SFT examples: the world has no answerable questions and no recorded trajectory was correct"
        )
    logger.info("%d SFT examples in %s", len(examples), out / "data")
    return examples


def shares_prefix(args) -> bool:
    """Whether the shared-prompt forward (training/prefix.py) applies to these trainer arguments: more than one
    example a batch (one has nothing to share), one process (DDP's wrapper expects one forward a step) and no
    gradient checkpointing (which turns the key-value cache off)."""
    return args.per_device_train_batch_size > 1 and args.world_size == 1 and not args.gradient_checkpointing


def _prefix_sharing_trainer():
    from trl import SFTTrainer

    class PrefixSharingSFTTrainer(SFTTrainer):
        """TRL's SFTTrainer whose loss comes from :func:`~foveate.training.prefix.forward_labelled`: the same
        token-mean cross-entropy over assistant tokens, with TRL's logged metrics (entropy, mean token accuracy,
        tokens seen)."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            import torch

            from foveate.training.prefix import forward_labelled

            if return_outputs:
                raise NotImplementedError("the shared-prompt loss returns no model outputs; set shared_prefix: false")
            out = forward_labelled(model, inputs["rendered"], self.processing_class.tokenizer.pad_token_id)
            logits, targets = out.logits.float(), out.next_tokens()
            per_token = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
            count = len(targets) if num_items_in_batch is None else num_items_in_batch
            loss = per_token.sum() / torch.as_tensor(count).clamp(min=1)
            mode = "train" if model.training else "eval"
            with torch.no_grad():
                log_p = logits.log_softmax(-1)
                entropy = -(log_p.exp() * log_p).sum(-1)
                self._metrics[mode]["entropy"].append(entropy.mean().item() if len(targets) else 0.0)
                right = (logits.argmax(-1) == targets).float()
                self._metrics[mode]["mean_token_accuracy"].append(right.mean().item() if len(targets) else 0.0)
            if mode == "train":
                self._total_train_tokens += int(inputs["attention_mask"].sum())
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
            return loss

    return PrefixSharingSFTTrainer


def sft_args(config: SFTRunConfig, out: Path, callbacks: list | None = None):
    """TRL's SFTConfig for a run writing into ``out``."""
    return trl_config(
        "sft",
        config.trl,
        out / "checkpoints",
        seed=config.seed,
        remove_unused_columns=False,
        dataset_kwargs={"skip_prepare_dataset": True},
        assistant_only_loss=False,
        max_length=None,
        **quiet_progress(config.trl, callbacks),
    )


def sft_trainer(
    config: SFTRunConfig, args, controller: Path | str, examples: list[dict], callbacks: list | None = None
):
    """(trainer, processor): the controller loaded for training and TRL's SFTTrainer over stored examples, with the
    shared-prompt loss where :func:`shares_prefix` allows it and ``config.shared_prefix`` asks for it."""
    from datasets import Dataset
    from trl import SFTTrainer

    from foveate.tools.toolbox import tool_schemas
    from foveate.training.checkpoint import load_for_training
    from foveate.training.collator import AgentChatCollator

    dataset = Dataset.from_list([{"messages": e["messages"], "images": e["images"]} for e in examples])
    model, processor = load_for_training(controller, config.model)
    shared = config.shared_prefix and shares_prefix(args)
    with old_checkpointing_name_quiet():  # PEFT asks it when it wraps the model in a LoRA adapter
        trainer = (_prefix_sharing_trainer() if shared else SFTTrainer)(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=processor,
            data_collator=AgentChatCollator(
                processor, tool_schemas(), cache=config.data.cache_rendered, keep_rendered=shared
            ),
            peft_config=config.lora.peft_config(config.model.train_vision) if config.lora.enabled else None,
            callbacks=callbacks,
        )
    drop_log_printer(trainer, callbacks)
    return trainer, processor


def run_sft(
    config: SFTRunConfig,
    out: Path,
    callbacks: list | None = None,
    data_progress: Callable[[int, int], None] | None = None,
) -> SFTResult:
    """Build the examples, train and save; ``callbacks`` are transformers TrainerCallbacks (progress display),
    ``data_progress(questions done, questions)`` follows the oracle while it builds the examples."""
    from foveate.agent.config import TrainedSettings
    from foveate.training.assets import MemoryCache, prepare_world, resolve_controller, resolve_embedder
    from foveate.training.checkpoint import save_trained
    from foveate.training.episodes import load_examples

    # The trainer's arguments first: under torchrun / accelerate launch they set up the process group,
    # and the main process builds what every process then reads (world, models, examples).
    args = sft_args(config, out, callbacks)
    main = args.process_index == 0
    if main:
        out.mkdir(parents=True, exist_ok=True)
    with args.main_process_first(local=False, desc="world, models and SFT examples"):
        world = prepare_world(config.world, out)
        controller = resolve_controller(config.model.path, out)
        embedder = resolve_embedder(config.embedder, out)
        if main or not (out / "data" / "examples.jsonl").is_file():
            examples = build_examples(config, out, MemoryCache(embedder, config.ingest), world, data_progress)
        else:  # the main process wrote them (a shared filesystem): read, do not rewrite under its feet
            examples = load_examples(out / "data")

    trainer, processor = sft_trainer(config, args, controller, examples, callbacks)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    path = save_trained(
        trainer, processor, out, TrainedSettings(agent=config.agent, ingest=config.ingest, embedder=embedder)
    )
    return SFTResult(path, len(examples), losses)
