"""Seconds per pretraining step of a pipeline preset's controller, on this machine.

    python -m foveate.training.pretrain_step [--preset cpu] [--steps 12] [--captions] [--fingerprint] [--data-only]
        [--draw-workers N]

Builds the preset's controller from random init in a temp folder, draws the preset's mixed batches
(or caption-only ones, ``--captions``) with a fixed seed, and times whole steps (drawing, rendering,
forward, backward, optimiser), after two warm-up steps; with ``--data-only``, the drawing and rendering
alone (the part of a step that runs on one core; its fingerprints hold no loss). The same seed draws
the same examples at every commit, so two commits compare step for step. Prints one JSON object; with
``--fingerprint`` it also holds each step's data hash (every rendered input) and loss: two commits that
print the same fingerprints draw the same data and train alike from the same start. With
``--draw-workers N`` N processes draw the batches, each step from its own generator (pretraining's
``draw_workers``): other batches than the loop's, the same for every N; with ``--data-only`` the time
is then what the loop waits for a batch, the workers' throughput.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def _data_hash(items) -> str:
    digest = hashlib.sha256()
    for item in items:
        for key in sorted(item.inputs):
            digest.update(key.encode())
            digest.update(item.inputs[key].numpy().tobytes())
    return digest.hexdigest()[:16]


def time_steps(
    preset: str = "cpu",
    steps: int = 12,
    captions_only: bool = False,
    seed: int = 0,
    fingerprint: bool = False,
    data_only: bool = False,
    draw_workers: int = 0,
) -> dict:
    import torch

    from foveate.training.checkpoint import load_for_training
    from foveate.training.pipeline import load_pipeline_config
    from foveate.training.pretrain import Renderer, TaskSampler, _batches, batch_loss

    c = load_pipeline_config(preset)
    torch.manual_seed(seed)
    warm = 2 + 4 * draw_workers  # the workers' head start (4 batches each) is spent before the clock
    with tempfile.TemporaryDirectory() as tmp:
        path = c.build_controller(Path(tmp) / "controller")
        config = c.pretrain_config(path).model_copy(  # as the pipeline's pretraining stage sets it
            update={
                "seed": seed,
                "steps": steps + warm,
                "caption_first_steps": steps + warm if captions_only else 0,
                "draw_workers": draw_workers,
            }
        )
        model, processor = load_for_training(path, config.model)
    renderer, sampler = Renderer(processor), TaskSampler(config)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    rng = np.random.default_rng(seed)
    seconds, prints = [], []
    with _batches(renderer, sampler, config, rng, 0) as batches:
        start = time.perf_counter()
        for _, items, _ in batches:
            if not data_only:
                loss, _ = batch_loss(model, items, renderer.pad_id)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            seconds.append(time.perf_counter() - start)
            if fingerprint:  # off the clock: hashing is not part of a step
                prints.append([_data_hash(items), None if data_only else round(loss.item(), 6)])
            start = time.perf_counter()
    timed = seconds[warm:]
    result = {
        "preset": preset,
        "batch": "captions" if captions_only else "mixed",
        "timed": "drawing and rendering" if data_only else "whole steps",
        "batch_size": config.batch_size,
        "steps": steps,
        "mean_seconds": round(float(np.mean(timed)), 3),
        "median_seconds": round(float(np.median(timed)), 3),
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "draw_workers": draw_workers,
    }
    if fingerprint:
        result["fingerprints"] = prints  # the warm-up steps too: every step drawn from the seed
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu", help="cpu, gpu or a pipeline YAML (default: cpu)")
    parser.add_argument("--steps", type=int, default=12, help="timed steps after two warm-up steps (default: 12)")
    parser.add_argument("--captions", action="store_true", help="caption-only batches (the first stage)")
    parser.add_argument(
        "--fingerprint", action="store_true", help="also print each step's data hash and loss (compare two commits)"
    )
    parser.add_argument(
        "--data-only", action="store_true", help="time drawing and rendering a batch alone (no forward or backward)"
    )
    parser.add_argument(
        "--draw-workers",
        type=int,
        default=0,
        metavar="N",
        help="draw batches in N worker processes, each step from its own generator (pretraining's draw_workers; "
        "default: 0, in the loop from one generator)",
    )
    args = parser.parse_args()
    from foveate.training.config import ConfigError

    try:
        result = time_steps(
            args.preset,
            args.steps,
            args.captions,
            fingerprint=args.fingerprint,
            data_only=args.data_only,
            draw_workers=args.draw_workers,
        )
    except ConfigError as exc:
        parser.error(str(exc))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
