"""Loading a controller for training and saving one that ``--controller DIR`` loads.

A saved controller is a plain ``save_pretrained`` directory: merged weights (LoRA folded in),
the processor, the tokenizer and the chat template the agent renders with (the model's own, or for
Qwen2-VL / Qwen2.5-VL the tool-calling variant of agent/backends/templates.py; never TRL's
marker-patched training variant), and the agent, overview and ingest settings it was trained
with (``foveate_settings.json``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from foveate.training.config import ModelSection

logger = logging.getLogger(__name__)
VISION_RE = re.compile(r"(^|\.)(visual|vision_tower|vision_model)\.")


def torch_dtype(name: str):
    import torch

    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return getattr(torch, name)


def load_for_training(path: str, section: ModelSection):
    """(model, processor) from a hub id or directory; float32 on CPU, bfloat16 on CUDA unless set."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    kwargs = {"dtype": torch_dtype(section.dtype)}
    if section.attn_implementation:
        kwargs["attn_implementation"] = section.attn_implementation
    from foveate.agent.backends.templates import ensure_tool_template

    processor = AutoProcessor.from_pretrained(path)
    if ensure_tool_template(processor):  # TRL's GRPO needs a template that renders tools; SFT must match it
        logger.info("%s: Qwen-VL chat template without tool support; training with the tool-calling variant", path)
    model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
    if not section.train_vision:
        for name, param in model.named_parameters():
            if VISION_RE.search(name):
                param.requires_grad_(False)
    return model, processor


def save_controller(model, processor, out_dir: Path, settings=None) -> Path:
    """Merge any LoRA adapter and write model + processor to ``out_dir`` (atomically: temp folder, then rename).

    ``settings`` (an ``agent.config.TrainedSettings``) is saved beside the weights, so that
    ``foveate ask --controller DIR`` runs the agent as it was trained.
    """
    import shutil

    from peft import PeftModel

    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    model.eval()
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    if settings is not None:
        settings.save(tmp)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    logger.info("controller saved to %s", out_dir)
    return out_dir


def save_trained(trainer, processor, out: Path, settings) -> Path:
    """After ``trainer.train()``: ``out/controller`` and ``out/train_log.json``, written by the main process
    alone (under torchrun / accelerate launch every process reaches here; the others wait for it)."""
    import json

    path = out / "controller"
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:  # one checkpoint, whatever the number of processes
        save_controller(trainer.accelerator.unwrap_model(trainer.model), processor, path, settings)
        (out / "train_log.json").write_text(json.dumps(trainer.state.log_history, indent=1))
    trainer.accelerator.wait_for_everyone()
    return path
