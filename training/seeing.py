"""Can a small controller learn to see an object of a given size? A probe, in isolation from the world.

Trains a copy of CONTROLLER (never saved) to caption frames ``a <colour> thing``: a square of
``--side`` pixels in one of the world's 7 colours, at a random place on a 160x120 frame of random texture (or a
plain one), or the whole frame in that colour (``--side 0``). Every ``--every`` steps it prints the
held-out colour accuracy (teacher-forced argmax over 48 fixed frames; chance 1/7). The synthetic
world's sprites are 0.18-0.28 of the frame height (22-34 px at 120), so this says whether the
controller's vision can pick them out at all before any question is asked about them.

    python -m foveate.training.seeing runs/pipeline/models/controller --side 16 --steps 400
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from foveate.evals.synthetic.events import COLOURS  # the world's own palette

WIDTH, HEIGHT = 160, 120


def frame_example(rng: np.random.Generator, side: int, texture: bool):
    """One frame and its caption as a pretraining Example; the targets are the colour and the noun."""
    from PIL import Image

    from foveate.training.pretrain import Example, Target

    name = list(COLOURS)[int(rng.integers(len(COLOURS)))]
    if side <= 0:
        pixels = np.full((HEIGHT, WIDTH, 3), COLOURS[name], np.uint8)
    else:
        if texture:
            pixels = (rng.random((HEIGHT // 4, WIDTH // 4, 3)) * 120).astype(np.uint8).repeat(4, 0).repeat(4, 1)
        else:
            pixels = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
        x, y = int(rng.integers(0, WIDTH - side)), int(rng.integers(0, HEIGHT - side))
        pixels[y : y + side, x : x + side] = COLOURS[name]
    text = f"a {name} thing"
    messages = [
        {
            "role": "user",
            "content": [{"type": "image", "image": Image.fromarray(pixels)}, {"type": "text", "text": "Describe it."}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": text}]},
    ]
    # the scorer reads a caption's colour and shape: here the noun stands in for the shape
    targets = [Target("colour", 0, 2, 2 + len(name)), Target("shape", 0, 3 + len(name), len(text))]
    return Example("caption", messages, targets)


def probe(
    controller: str,
    side: int,
    texture: bool = True,
    steps: int = 400,
    lr: float = 2e-3,
    batch_size: int = 8,
    every: int = 50,
    seed: int = 0,
) -> list[dict]:
    """Train and score as the module doc says; returns ``[{"step", "loss", "colour"}, ...]``."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from foveate.training.prefix import collate
    from foveate.training.pretrain import Renderer, evaluate

    torch.manual_seed(seed)
    processor = AutoProcessor.from_pretrained(controller)
    model = AutoModelForImageTextToText.from_pretrained(controller, dtype=torch.float32)
    render = Renderer(processor)
    train_rng, held_rng = np.random.default_rng(seed), np.random.default_rng(seed + 1000)
    held = [render(frame_example(held_rng, side, texture), score=True) for _ in range(48)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    curve = []
    for step in range(1, steps + 1):
        model.train()
        examples = [render(frame_example(train_rng, side, texture)).inputs for _ in range(batch_size)]
        batch = collate(examples, render.pad_id)
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % every == 0 or step == steps:
            model.eval()
            scores = evaluate(model, held, batch_size, render.pad_id)
            curve.append({"step": step, "loss": round(loss.item(), 4), "colour": round(scores["colour"], 4)})
            print(json.dumps(curve[-1]), flush=True)
    return curve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("controller", help="A controller directory (e.g. from `foveate synth models OUT`).")
    parser.add_argument("--side", type=int, default=16, help="Side of the coloured square, pixels (0: whole frame).")
    parser.add_argument("--plain", action="store_true", help="A plain dark background instead of random texture.")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    probe(args.controller, args.side, not args.plain, args.steps, args.lr, every=args.every, seed=args.seed)


if __name__ == "__main__":
    main()
