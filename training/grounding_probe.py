"""Does the controller use the frames it asked for? A probe of a saved controller, no training.

Colour questions ("What colour was the hexagon?") are answered by one look: the oracle's last turn
describes the zoom's frames ("The frames show a white hexagon moving left.") and answers with the
colour it named. This probe draws such grounded episodes (training/pretrain.py, val-split worlds, frames
rendered from the world log) and scores the colour word of that description, teacher-forced argmax as
pretraining scores its spans (``seen``), and the answer's colour word, teacher-forced after the true
description (``answer``: the copy from the description into the answer JSON), four ways:

- ``real``: the episode as drawn;
- ``blank_zoom``: the zoom's frames replaced by black ones of the same size;
- ``other_zoom``: the zoom's frames taken from the next episode's zoom (another sprite);
- ``blank_all``: every image of the episode black (overview, thumbnails, zoom).

A controller that reads the colour off the zoom's frames scores well above chance (1/5: the five
options) on ``real`` and falls on the other three; one that guesses from the text scores alike on all
four. Next to it, ``caption_colour``: the colour word of a single captioned val frame (the same
frames' seeing, out of the episode), and ``caption_colour_lead_in``: the same frames with the caption
led in as the episode's description is (``The frames show a red star ...``). A controller that reads
a colour at a fixed distance from the frame, rather than off the frame's tokens, names it in the
first and not in the second (pretraining's ``caption.p_varied`` varies that distance).

    python -m foveate.training.grounding_probe runs/l12/sft/controller --preset cpu --episodes 40
"""

from __future__ import annotations

import argparse
import copy
import json

import numpy as np

VARIANTS = ("real", "blank_zoom", "other_zoom", "blank_all")


def _images(message: dict) -> list[dict]:
    content = message["content"]
    return [b for b in content if b.get("type") == "image"] if isinstance(content, list) else []


def _zoom(example) -> dict:
    return [m for m in example.messages if m["role"] == "tool"][-1]


def _blank(block: dict) -> dict:
    from PIL import Image

    return dict(block, image=Image.new("RGB", block["image"].size))


def variants(episodes: list) -> dict[str, list]:
    """The episodes four ways (see the module docstring); the targets stay the real episode's."""
    out: dict[str, list] = {name: [] for name in VARIANTS}
    for k, ex in enumerate(episodes):
        out["real"].append(ex)
        blank = copy.deepcopy(ex)
        zoom = _zoom(blank)
        zoom["content"] = [_blank(b) if b.get("type") == "image" else b for b in zoom["content"]]
        out["blank_zoom"].append(blank)
        other = copy.deepcopy(ex)
        donor = _images(_zoom(episodes[(k + 1) % len(episodes)]))
        shown = iter(donor * len(_images(_zoom(other))))
        zoom = _zoom(other)
        zoom["content"] = [
            dict(b, image=next(shown)["image"]) if b.get("type") == "image" else b for b in zoom["content"]
        ]
        out["other_zoom"].append(other)
        dark = copy.deepcopy(ex)
        for m in dark.messages:
            if _images(m):
                m["content"] = [_blank(b) if b.get("type") == "image" else b for b in m["content"]]
        out["blank_all"].append(dark)
    return out


def probe(controller: str, preset: str = "cpu", episodes: int = 40, seed: int = 7, batch_size: int = 8) -> dict:
    """Colour-word accuracy of the description in ``episodes`` colour episodes, four ways, and of
    ``episodes`` captioned val frames."""
    from foveate.training.checkpoint import load_for_training
    from foveate.training.config import ModelSection
    from foveate.training.pipeline import load_pipeline_config
    from foveate.training.pretrain import Renderer, caption_example, colour_episodes, evaluate

    config = load_pipeline_config(preset).pretrain_config(controller)
    model, processor = load_for_training(controller, ModelSection(path=controller, dtype="float32"))
    renderer = Renderer(processor)
    drawn = colour_episodes(config, episodes, seed)
    report: dict = {"controller": controller, "episodes": len(drawn), "chance": 0.2, "seen": {}, "answer": {}}
    for name, group in variants(drawn).items():
        scores = evaluate(model, [renderer(ex, score=True) for ex in group], batch_size, renderer.pad_id)
        report["seen"][name], report["answer"][name] = scores["seen"], scores["answer"]
    rng = np.random.default_rng(seed)
    plain = config.caption.model_copy(update={"p_varied": 0.0})
    captions = []
    while len(captions) < episodes:  # frames that show a sprite (text cards and empty scenes have no colour)
        ex = caption_example(rng, "val", plain)
        if any(t.skill == "colour" for t in ex.targets):
            captions.append(ex)
    for key, group in (("caption_colour", captions), ("caption_colour_lead_in", [led_in(ex) for ex in captions])):
        rendered = [renderer(ex, score=True) for ex in group]
        report[key] = evaluate(model, rendered, batch_size, renderer.pad_id)["colour"]
    return report


def led_in(example):
    """A plain caption example with its caption led in as the oracle describes a zoom (``The frames show ...``)."""
    from foveate.training.pretrain import DESCRIBED, captioned

    user, reply = example.messages
    return captioned(user["content"], reply["content"][0]["text"], DESCRIBED)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("controller", help="A saved controller folder, e.g. OUT/sft/controller.")
    parser.add_argument(
        "--preset", default="cpu", help="The pipeline preset (or YAML) whose worlds and budgets to use."
    )
    parser.add_argument("--episodes", type=int, default=40, help="Colour episodes (and captioned frames) to score.")
    parser.add_argument("--seed", type=int, default=7, help="Draws the episodes.")
    args = parser.parse_args(argv)
    print(json.dumps(probe(args.controller, args.preset, args.episodes, args.seed)))


if __name__ == "__main__":
    main()
