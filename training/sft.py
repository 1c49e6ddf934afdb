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
from dataclasses import dataclass, field
from pathlib import Path

from foveate.training.config import SFTRunConfig, drop_log_printer, quiet_progress, trl_config

logger = logging.getLogger(__name__)


@dataclass
class SFTResult:
    controller: Path
    examples: int
    losses: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        first, last = (self.losses[0], self.losses[-1]) if self.losses else (None, None)
        return {"controller": str(self.controller), "examples": self.examples, "first_loss": first, "last_loss": last}


def build_examples(config: SFTRunConfig, out: Path, memories, world: Path) -> list[dict]:
    """Oracle and recorded episodes, written to OUTPUT/data; returns the stored rows."""
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


def run_sft(config: SFTRunConfig, out: Path, callbacks: list | None = None) -> SFTResult:
    """Train and save; ``callbacks`` are transformers TrainerCallbacks (progress display)."""
    from datasets import Dataset
    from trl import SFTTrainer

    from foveate.agent.config import TrainedSettings
    from foveate.tools.toolbox import tool_schemas
    from foveate.training.assets import MemoryCache, prepare_world, resolve_controller, resolve_embedder
    from foveate.training.checkpoint import load_for_training, save_trained
    from foveate.training.collator import AgentChatCollator
    from foveate.training.episodes import load_examples

    # The trainer's arguments first: under torchrun / accelerate launch they set up the process group,
    # and the main process builds what every process then reads (world, models, examples).
    args = trl_config(
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
    main = args.process_index == 0
    if main:
        out.mkdir(parents=True, exist_ok=True)
    with args.main_process_first(local=False, desc="world, models and SFT examples"):
        world = prepare_world(config.world, out)
        controller = resolve_controller(config.model.path, out)
        embedder = resolve_embedder(config.embedder, out)
        if main or not (out / "data" / "examples.jsonl").is_file():
            examples = build_examples(config, out, MemoryCache(embedder, config.ingest), world)
        else:  # the main process wrote them (a shared filesystem): read, do not rewrite under its feet
            examples = load_examples(out / "data")
    dataset = Dataset.from_list([{"messages": e["messages"], "images": e["images"]} for e in examples])

    # model and trainer
    model, processor = load_for_training(controller, config.model)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        data_collator=AgentChatCollator(processor, tool_schemas(), cache=config.data.cache_rendered),
        peft_config=config.lora.peft_config(config.model.train_vision) if config.lora.enabled else None,
        callbacks=callbacks,
    )

    # train, save
    drop_log_printer(trainer, callbacks)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    path = save_trained(
        trainer, processor, out, TrainedSettings(agent=config.agent, ingest=config.ingest, embedder=embedder)
    )
    return SFTResult(path, len(examples), losses)
