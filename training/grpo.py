"""GRPO of the controller with TRL's ``GRPOTrainer`` and ``environment_factory`` over the agent's tools.

Rollouts are multi-turn: the policy writes ``<tool_call>`` blocks, TRL parses them with the
tokenizer's response template (Qwen's Hermes format, the agent's format), calls the
environment's methods (training/environment.py: the agent's VideoToolbox) and feeds the results,
images included, back to the model until it stops calling tools. Rewards (training/rewards.py)
score the final answer, its format, its evidence and the frames spent, each weighted in the
config and logged on its own. Rollouts use vLLM (colocated) on CUDA when it is installed,
transformers' ``generate`` otherwise. Output: OUTPUT/controller (merged), loadable by the agent.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from foveate.training.config import (
    GRPORunConfig,
    drop_log_printer,
    load_config,
    old_checkpointing_name_quiet,
    quiet_progress,
    trl_config,
)

logger = logging.getLogger(__name__)


@dataclass
class GRPOResult:
    controller: Path
    questions: int
    log_history: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        rewards = [h["reward"] for h in self.log_history if "reward" in h]
        return {
            "controller": str(self.controller),
            "questions": self.questions,
            "first_reward": rewards[0] if rewards else None,
            "last_reward": rewards[-1] if rewards else None,
        }


def ensure_tool_parsing(processor) -> None:
    """Give the tokenizer a response template so TRL can parse tool calls; unknown templates get Qwen's.

    TRL recognises the chat templates of released models; a custom one (the tiny controller's)
    speaks the same ``<|im_start|>assistant`` / ``<tool_call>{json}</tool_call>`` format.
    """
    from trl.chat_template_utils import add_response_schema, qwen3_template

    tokenizer = getattr(processor, "tokenizer", processor)
    if getattr(tokenizer, "response_template", None) is not None:
        return
    try:
        add_response_schema(processor)
    except ValueError:
        tokenizer.response_template = qwen3_template


def use_vllm(config: GRPORunConfig) -> bool:
    import torch

    if config.generation == "transformers":
        return False
    available = torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None
    if config.generation == "vllm" and not available:
        raise ValueError("generation: vllm needs CUDA and the vllm package (pip install 'foveate[vllm]')")
    return available


def build_dataset(config: GRPORunConfig, world: Path, memories):
    """One row per question: the prompt (system + question) plus the columns reset() and the rewards read."""
    from datasets import Dataset

    from foveate.training.assets import world_rows
    from foveate.training.environment import dataset_prompt

    rows = []
    for r in world_rows(world, config.world.max_questions):
        if not r.evidence or r.answer is None:
            continue
        memory = memories(r.video)
        rows.append(
            {
                "prompt": dataset_prompt(r.question, r.options, memory, config.agent),
                "id": r.id,
                "video": r.video,
                "question": r.question,
                "options": r.options,
                "answer": r.answer,
                "evidence": [list(s) for s in r.evidence],
            }
        )
    if not rows:
        raise ValueError(f"{world}: no questions with answers and evidence to train on")
    return Dataset.from_list(rows)


def warm_start(config: GRPORunConfig, out: Path, callbacks: list | None) -> str:
    """Run the warm-start SFT config into OUTPUT/sft (once) and return its controller."""
    from foveate.training.sft import run_sft

    sft_dir = out / "sft"
    if not (sft_dir / "controller" / "config.json").is_file():
        run_sft(load_config(config.warm_start_sft, "sft"), sft_dir, callbacks)
    return str(sft_dir / "controller")


def run_grpo(config: GRPORunConfig, out: Path, callbacks: list | None = None) -> GRPOResult:
    """Train and save; ``callbacks`` are transformers TrainerCallbacks (progress display)."""
    from trl import GRPOTrainer

    from foveate.agent.config import TrainedSettings
    from foveate.training.assets import MemoryCache, prepare_world, resolve_controller, resolve_embedder
    from foveate.training.checkpoint import load_for_training, save_trained
    from foveate.training.environment import VideoEnvironment
    from foveate.training.rewards import ToolCallMonitor, reward_functions

    # The trainer's arguments first: under torchrun / accelerate launch they set up the process group.
    monitor = ToolCallMonitor(config.stop_after_steps_without_tool_calls)
    funcs, weights = reward_functions(config.rewards, monitor)
    ours = {"seed": config.seed, "reward_weights": weights, **quiet_progress(config.trl, callbacks)}
    if "use_vllm" not in config.trl:
        ours |= {"use_vllm": use_vllm(config)} | ({"vllm_mode": "colocate"} if use_vllm(config) else {})
    if "max_tool_calling_iterations" not in config.trl:
        ours["max_tool_calling_iterations"] = max(1, config.agent.max_steps - 1)
    args = trl_config("grpo", config.trl, out / "checkpoints", **ours)
    if args.process_index == 0:
        out.mkdir(parents=True, exist_ok=True)

    # assets, data: the warm-start SFT runs on every process (it trains under the same launcher); the
    # main process then builds the world and the memories first, the others read them from disk.
    controller = warm_start(config, out, callbacks) if config.warm_start_sft else None
    with args.main_process_first(local=False, desc="world, models and GRPO prompts"):
        world = prepare_world(config.world, out)
        controller = controller or resolve_controller(config.model.path, out)
        embedder = resolve_embedder(config.embedder, out)
        memories = MemoryCache(embedder, config.ingest)
        dataset = build_dataset(config, world, memories)

    # model, trainer
    model, processor = load_for_training(controller, config.model)
    ensure_tool_parsing(processor)
    with warnings.catch_warnings(), old_checkpointing_name_quiet():
        # TRL marks environment_factory experimental at every construction; the choice is made (module docstring)
        warnings.filterwarnings("ignore", message="You are using 'environment_factory'", category=UserWarning)
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=funcs,
            args=args,
            train_dataset=dataset,
            processing_class=processor,
            environment_factory=partial(VideoEnvironment, memories, config.agent),
            peft_config=config.lora.peft_config(config.model.train_vision) if config.lora.enabled else None,
            callbacks=callbacks,
        )

    # train, save
    drop_log_printer(trainer, callbacks)
    with old_checkpointing_name_quiet():
        trainer.train()
    path = save_trained(
        trainer, processor, out, TrainedSettings(agent=config.agent, ingest=config.ingest, embedder=embedder)
    )
    return GRPOResult(path, len(dataset), trainer.state.log_history)
