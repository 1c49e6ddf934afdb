"""Seconds per pretraining step of a pipeline preset's controller, on this machine.

    python -m foveate.training.pretrain_step [--preset cpu] [--steps 12] [--captions]

Builds the preset's controller from random init in a temp folder, draws the preset's mixed batches
(or caption-only ones, ``--captions``) with a fixed seed, and times whole steps (drawing, rendering,
forward, backward, optimiser), after two warm-up steps. The same seed draws the same examples at
every commit, so two commits compare step for step. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def time_steps(preset: str = "cpu", steps: int = 12, captions_only: bool = False, seed: int = 0) -> dict:
    import torch

    from foveate.training.checkpoint import load_for_training
    from foveate.training.pipeline import load_pipeline_config
    from foveate.training.pretrain import Renderer, TaskSampler, batch_loss

    c = load_pipeline_config(preset)
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = c.build_controller(Path(tmp) / "controller")
        config = c.pretrain_config(path)  # as the pipeline's pretraining stage sets it
        model, processor = load_for_training(path, config.model)
    renderer, sampler = Renderer(processor), TaskSampler(config)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    rng = np.random.default_rng(seed)
    seconds = []
    for _ in range(steps + 2):
        start = time.perf_counter()
        items = [renderer(ex) for ex in sampler.draw(rng, config.batch_size, captions_only)]
        loss, _ = batch_loss(model, items, renderer.pad_id)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seconds.append(time.perf_counter() - start)
    timed = seconds[2:]
    return {
        "preset": preset,
        "batch": "captions" if captions_only else "mixed",
        "batch_size": config.batch_size,
        "steps": steps,
        "mean_seconds": round(float(np.mean(timed)), 3),
        "median_seconds": round(float(np.median(timed)), 3),
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu", help="cpu, gpu or a pipeline YAML (default: cpu)")
    parser.add_argument("--steps", type=int, default=12, help="timed steps after two warm-up steps (default: 12)")
    parser.add_argument("--captions", action="store_true", help="caption-only batches (the first stage)")
    args = parser.parse_args()
    from foveate.training.config import ConfigError

    try:
        result = time_steps(args.preset, args.steps, args.captions)
    except ConfigError as exc:
        parser.error(str(exc))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
