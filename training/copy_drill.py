"""Is a copy unlearnable or only rare? Train a controller on nothing but episodes that need it, then probe.

    python -m foveate.training.copy_drill CONTROLLER -o OUT [--preset cpu] [--steps 250] [--copy-weight 5]
        [--learning-rate 1e-3] [--episodes 80]

Continues ``CONTROLLER`` on held-in pretraining reading episodes (cite stage, the ``pretrain.read``
settings of ``--preset``) kept only where the answer copies a colour from the description or the
description copies a direction from a dense_sample's motion line: ``--steps`` steps of 16, AdamW at a
constant ``--learning-rate``, the loss on the answer step's copied tokens (``said``, ``motion``)
weighted ``--copy-weight`` times the rest. It saves the drilled controller to ``OUT/controller`` and
prints one JSON object: the training loss every 50 steps and the reading probe's ``p_gold`` (and
``said_by_kind``) before and after (:mod:`foveate.training.reading_probe`, ``--episodes`` held-out
episodes). A copy that the drill lifts above chance is one the mix gives too rarely; one that stays
at chance with every example needing it is not learned by this model in that many steps.

The pipeline's ``drill`` stage (``drill_steps``, ``drill_copy_weight``, ``drill_lr`` of PipelineConfig) runs
the same drill, without the probes, between pretraining and SFT.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from foveate.training.config import ConfigError

DRILLED = ("said", "motion")


def needs_copy(example) -> bool:
    """Whether a reading episode's answer copies a colour word, or its description a motion line's direction."""
    from foveate.training.reading_probe import word_kind

    said = [example.messages[-1]["content"][0]["text"][t.start : t.end] for t in example.targets if t.skill == "said"]
    return any(t.skill == "motion" for t in example.targets) or any(word_kind(w) == "colour" for w in said)


def drill(
    controller: str,
    out: str | Path,
    read,
    steps: int = 250,
    copy_weight: float = 5.0,
    learning_rate: float = 1e-3,
    episodes: int = 80,
    batch_size: int = 16,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
    preset: str = "cpu",
) -> dict:
    """Drill ``controller`` on episodes drawn with ``read`` (a :class:`~foveate.training.config.ReadTasks`; see the
    module docstring), save it to ``out/controller``, and return the printed object (also ``out/metrics.json``).
    ``episodes`` 0 skips the probes (``before`` and ``after`` are then None); ``preset`` is what the probes draw
    their episodes with. ``progress(step, steps, loss)`` is called after every step."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from foveate.training.checkpoint import save_controller
    from foveate.training.pretrain import ReadEpisode, Renderer, _forward, on_device, subjects
    from foveate.training.reading_probe import probe

    started = time.perf_counter()
    read = read.model_copy(update={"p_order": 0.0})  # an order question copies neither
    before = probe(controller, preset, episodes, 0) if episodes else None
    processor = AutoProcessor.from_pretrained(controller)
    model = AutoModelForImageTextToText.from_pretrained(controller, dtype=torch.float32).train()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    render = Renderer(processor)
    trained, _ = subjects(read.heldout_fraction)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.0)

    def draw():
        while True:
            ex = ReadEpisode(rng, read, rng.random() < read.p_bare).build(
                trained[int(rng.integers(len(trained)))], "cite", trained
            )
            if needs_copy(ex):
                return on_device(render(ex, score=True), device)

    losses = []
    for step in range(1, steps + 1):
        items = [draw() for _i in range(batch_size)]
        loss = torch.zeros((), device=device)
        for kind in ("read", "read_bare"):
            group = [it for it in items if it.kind == kind]
            if not group:
                continue
            scored = _forward(model, group, render.pad_id)
            token_loss = torch.nn.functional.cross_entropy(
                scored.logits.float(), scored.next_tokens(), reduction="none"
            )
            weight = torch.ones_like(token_loss)
            rows = scored.rows()
            for b, item in enumerate(group):
                for skill, positions in item.targets:
                    if skill in DRILLED:
                        weight[rows[b, positions - scored.offset - 1]] = copy_weight
            loss = loss + (weight * token_loss).sum() / weight.sum() * len(group) / len(items)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step, steps, losses[-1])
    path = save_controller(model, processor, Path(out) / "controller")
    after = probe(str(path), preset, episodes, 0) if episodes else None

    def kept(report: dict | None) -> dict | None:
        return {"p_gold": report["p_gold"], "said_by_kind": report["said_by_kind"]} if report else None

    report = {
        "controller": str(path),
        "steps": steps,
        "copy_weight": copy_weight,
        "learning_rate": learning_rate,
        "loss_every_50": [round(float(np.mean(losses[i : i + 50])), 4) for i in range(0, len(losses), 50)],
        "before": kept(before),
        "after": kept(after),
        "seconds": round(time.perf_counter() - started, 1),
    }
    (Path(out) / "metrics.json").write_text(json.dumps(report, indent=1))
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m foveate.training.copy_drill", description=__doc__.splitlines()[0])
    parser.add_argument("controller", help="A saved controller folder, e.g. OUT/pretrain/controller.")
    parser.add_argument("-o", "--out", required=True, help="Folder for the drilled controller (OUT/controller).")
    parser.add_argument(
        "--preset", default="cpu", help="The pipeline preset (or YAML) whose pretrain.read settings draw."
    )
    parser.add_argument("--steps", type=int, default=250, help="Optimizer steps of 16 episodes.")
    parser.add_argument(
        "--copy-weight", type=float, default=5.0, help="Loss weight of the copied tokens (rest: 1); 5 is the preset's."
    )
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="AdamW's constant learning rate.")
    parser.add_argument(
        "--episodes", type=int, default=80, help="Held-out episodes the probe scores before and after."
    )
    args = parser.parse_args(argv)
    if not (Path(args.controller) / "config.json").is_file():
        parser.error(f"{args.controller}: not a saved controller folder (no config.json in it)")
    if args.steps < 1 or args.copy_weight <= 0 or args.learning_rate <= 0:
        parser.error("--steps, --copy-weight and --learning-rate must be positive")
    from tqdm import tqdm

    from foveate.training.pipeline import load_pipeline_config

    try:
        read = load_pipeline_config(args.preset).pretrain_config(args.controller).read
    except ConfigError as exc:
        parser.error(str(exc))
    with tqdm(total=args.steps, desc="copy drill") as bar:

        def progress(step: int, steps: int, loss: float) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")

        report = drill(
            args.controller,
            args.out,
            read,
            args.steps,
            args.copy_weight,
            args.learning_rate,
            args.episodes,
            progress=progress,
            preset=args.preset,
        )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
