"""What does a controller write where a reading skill copies? Teacher-forced, on held-out reading episodes.

    python -m foveate.training.reading_probe CONTROLLER [--preset cpu] [--episodes 80] [--order 40] [--seed 321]
        [--top 12] [--attention]

Builds ``--episodes`` held-out pretraining reading episodes (cite stage, full prompt, subjects never
trained on) and ``--order`` held-out order episodes ("Which appeared first (last)?", answered by the
letter on the first (last) line of one retrieve), and scores each copied span as pretraining does: the
model's argmax at every token given the true text before it. Prints one JSON object: per skill,
``right`` of ``n``, and for the answer-step skills (``said``, ``motion``, ``order``) the commonest
``gold -> written`` pairs, which tell a copy that fails from a prior (``down -> right`` every time), and
``said`` split by what its word is (a colour, a direction or a text card's word: the world writes them
differently, and one may be copied where another is not). ``p_gold`` gives, for the colour and direction
words of ``said`` and ``motion``, the mean probability the model puts on the gold word among the words
of its kind (the world's colours or four directions) and what choosing blindly would give: a copy that
is not learned at all sits at that chance level even where its argmax is sometimes right.
For order episodes it also counts whether what was written is the letter of the first or the last
line, or another. ``--attention`` adds, for the ``said`` and ``motion`` targets, how much of each
attention head's weight, where the model writes the copy, lies on the copied word's latest earlier
occurrence (the source a copy head reads), per word kind: a card word, copied, shows what a working
copy head puts there. The episodes are drawn with the ``pretrain.read`` settings of ``--preset`` (a preset
or the run's YAML), so a run trained with, say, ``read.thought_names_query`` is probed on episodes like
its own.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np

from foveate.training.config import ConfigError

ANSWER_STEP = ("said", "motion", "order")


def word_kind(word: str) -> str:
    """``colour``, ``direction`` or ``word`` (a text card's): what a description's answer word is."""
    from foveate.evals.synthetic.events import COLOURS, DIRECTIONS

    return "colour" if word in COLOURS else "direction" if word in DIRECTIONS else "word"


def probe(
    controller: str,
    preset: str = "cpu",
    episodes: int = 80,
    order: int = 40,
    seed: int = 321,
    top: int = 12,
    attention: bool = False,
) -> dict:
    """Score ``episodes`` plain and ``order`` order-question reading episodes, drawn with ``preset``'s
    ``pretrain.read`` settings; returns the printed object (with ``attention``, also the heads' weight
    on each copy's source: :func:`attention_to_source`)."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from foveate.evals.synthetic.events import COLOURS, DIRECTIONS
    from foveate.training.pipeline import load_pipeline_config
    from foveate.training.pretrain import ReadEpisode, Renderer, _group_loss, subjects

    read = load_pipeline_config(preset).pretrain_config(controller).read

    processor = AutoProcessor.from_pretrained(controller)
    # eager attention returns its weights (the same logits as the default kernel, up to rounding)
    implementation = {"attn_implementation": "eager"} if attention else {}
    model = AutoModelForImageTextToText.from_pretrained(controller, dtype=torch.float32, **implementation).eval()
    render = Renderer(processor)
    _, held = subjects(read.heldout_fraction)
    rng = np.random.default_rng(seed)
    right, n = Counter(), Counter()
    pairs: dict[str, Counter] = {skill: Counter() for skill in ANSWER_STEP}
    lines = Counter()
    kinds = {"colour": list(COLOURS), "direction": list(DIRECTIONS)}
    p_gold: dict[str, list[float]] = {}
    on_source: dict[str, list[torch.Tensor]] = {}

    @cache
    def first_tokens(kind: str, spaced: bool) -> list[int] | None:
        words = kinds[kind]
        ids = [processor.tokenizer.encode((" " if spaced else "") + w, add_special_tokens=False)[0] for w in words]
        return ids if len(set(ids)) == len(ids) else None  # words that share a first token: not scored

    for i in range(episodes + order):
        asks_order = i >= episodes
        tasks = read.model_copy(update={"p_order": 1.0 if asks_order else 0.0})
        episode = ReadEpisode(rng, tasks).build(held[int(rng.integers(len(held)))], "cite", held)
        item = render(episode, score=True)
        with torch.no_grad():
            _, out = _group_loss(model, [item], render.pad_id)
        predicted, rows = out.logits.argmax(-1), out.rows()
        weights = None
        if attention and any(skill in ("said", "motion") for skill, _ in item.targets):
            with torch.no_grad():
                weights = model(input_ids=item.inputs["input_ids"][None], output_attentions=True).attentions
        for skill, positions in item.targets:
            written = processor.tokenizer.decode(predicted[rows[0, positions - out.offset - 1]]).strip()
            gold = processor.tokenizer.decode(out.ids[0, positions - out.offset]).strip()
            n[skill] += 1
            right[skill] += written == gold
            if skill in pairs:
                pairs[skill][f"{gold} -> {written}"] += 1
            kind = word_kind(gold)
            if skill in ("said", "motion") and kind in kinds:
                token = processor.tokenizer.decode(out.ids[0, positions[0] - out.offset])
                candidates = first_tokens(kind, token.startswith(" "))
                if candidates is not None:
                    logits = out.logits[rows[0, positions[0] - out.offset - 1]]
                    p = logits[candidates].float().softmax(0)
                    p_gold.setdefault(f"{skill}_{kind}", []).append(float(p[kinds[kind].index(gold)]))
            if weights is not None and skill in ("said", "motion"):
                shares = attention_to_source(weights, item.inputs["input_ids"], int(positions[0]), processor.tokenizer)
                if shares is not None:
                    on_source.setdefault(f"{skill}_{kind}", []).append(shares)
            if skill == "order":
                result = next(m for m in episode.messages if m["role"] == "tool")["content"][0]["text"]
                listed = [line[0] for line in result.splitlines()[1:] if line[1:3] == ". "]
                lines["first line" if written == listed[0] else "last line" if written == listed[-1] else "other"] += 1
    said_right, said_n = Counter(), Counter()
    for pair, count in pairs["said"].items():
        gold, written = pair.split(" -> ")
        said_n[word_kind(gold)] += count
        said_right[word_kind(gold)] += count * (written == gold)
    report = {
        "controller": controller,
        "skills": {skill: {"right": right[skill], "n": n[skill]} for skill in sorted(n)},
        "written": {skill: dict(c.most_common(top)) for skill, c in pairs.items() if c},
        "said_by_kind": {kind: {"right": said_right[kind], "n": said_n[kind]} for kind in sorted(said_n)},
    }
    report["p_gold"] = {
        key: {"mean": round(float(np.mean(v)), 3), "n": len(v), "chance": round(1 / len(kinds[key.split("_")[1]]), 3)}
        for key, v in sorted(p_gold.items())
    }
    if lines:
        report["order_letter_is"] = dict(lines)
    if attention:
        report["attention_to_source"] = {}
        for key, shares in sorted(on_source.items()):
            mean = torch.stack(shares).mean(0)  # (layers, heads)
            layer, head = divmod(int(mean.argmax()), mean.shape[1])
            report["attention_to_source"][key] = {
                "n": len(shares),
                "best_head": f"L{layer}H{head}",
                "best": round(float(mean.max()), 3),
                "per_head": [[round(float(x), 3) for x in row] for row in mean],
            }
    return report


def attention_to_source(weights, ids, target: int, tokenizer):
    """(layers, heads): the attention weight, at the position that predicts token ``target``, on the latest
    earlier token that writes the same word (stripped of its space: a description's ``" green"`` is the
    source of an answer's ``"green"``); None when the word was not written before."""
    import torch

    word = tokenizer.decode([int(ids[target])]).strip()
    earlier = [i for i in range(target - 1) if tokenizer.decode([int(ids[i])]).strip() == word]
    if not earlier:
        return None
    return torch.stack([layer[0, :, target - 1, earlier[-1]] for layer in weights])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m foveate.training.reading_probe", description=__doc__.splitlines()[0]
    )
    parser.add_argument("controller", help="A saved controller folder, e.g. OUT/pretrain/controller.")
    parser.add_argument(
        "--preset", default="cpu", help="The pipeline preset (or YAML) whose pretrain.read settings draw the episodes."
    )
    parser.add_argument("--episodes", type=int, default=80, help="Held-out reading episodes (not order).")
    parser.add_argument("--order", type=int, default=40, help="Held-out order-question episodes.")
    parser.add_argument("--seed", type=int, default=321, help="Draws the held-out episodes.")
    parser.add_argument("--top", type=int, default=12, help="The commonest gold -> written pairs to print per skill.")
    parser.add_argument(
        "--attention",
        action="store_true",
        help="Also report each head's attention weight on the copied word's source, where said and motion copy.",
    )
    args = parser.parse_args(argv)
    if not (Path(args.controller) / "config.json").is_file():
        parser.error(f"{args.controller}: not a saved controller folder (no config.json in it)")
    try:
        report = probe(args.controller, args.preset, args.episodes, args.order, args.seed, args.top, args.attention)
    except ConfigError as exc:
        parser.error(str(exc))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
