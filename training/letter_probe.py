"""Can a controller learn to give, by letter, the option its answer's words name?

    python -m foveate.training.letter_probe CONTROLLER [--steps 1500] [--lr 2e-3] [--options lines|json]

Trains CONTROLLER (a saved controller folder, e.g. ``OUT/pretrain/controller``) on one kind of
short example only: a question with five options (no system prompt) -> ``The frames show <caption
words>.`` and an answer with those words and their option's letter,
``{"answer": "magenta", "choice": "E", ...}``. Every ``--eval-every`` steps it scores 128 held-out
examples about subjects never trained on, as pretraining scores its skills (teacher-forced argmax):
``said`` (the answer's words, copied from the description) and ``letter`` (the option line that holds
those words, and the letter before it). One JSON line per evaluation.

The letter is a lookup the description does not give: the words are copied from a few tokens back,
the letter has to be found by matching them against the option lines. ``--options json`` writes the
options as a JSON object (``{"A": "red", ...}``), so the option's words are the same tokens as the
answer's. On the cpu preset's pretrained controller the letter stayed at chance either way
(docs/results.md), which is why an answer picks its option by its text (foveate/agent/answer.py).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

EVAL_SEED = 7_002


def example(rng: np.random.Generator, pool: list[str], options_format: str = "lines"):
    """A question about a subject of ``pool`` -> its description and the lettered answer (an Example)."""
    from foveate.agent.answer import LETTERS, Answer, format_answer
    from foveate.agent.prompts import question_text
    from foveate.evals.synthetic.events import DIRECTIONS
    from foveate.memory.blocks import text_block
    from foveate.training.pretrain import DESCRIBED, Example, Target, _question

    subject = pool[int(rng.integers(len(pool)))]
    while True:  # the question families whose answer a description names
        question, options, _, describe = _question(rng, subject)
        options = [options[i] for i in rng.permutation(len(options))]
        described = [i for i, option in enumerate(options) if describe(option, "left") is not None]
        if described:
            break
    index = int(rng.choice(described))
    letter, words = LETTERS[index], options[index]
    handle = f"c{int(rng.integers(1, 6))}"
    reply = f"{DESCRIBED}{describe(words, str(rng.choice(DIRECTIONS)))}.\n"
    reply += format_answer(Answer(text=words, choice=letter), [handle])
    text = question_text(question, options, float(rng.integers(60, 1800)))
    if options_format == "json":
        text = text[: text.index("Options:")] + "Options: " + json.dumps(dict(zip(LETTERS, options)))
    targets = []
    for skill, value, key in (("said", words, '"answer": "'), ("letter", letter, '"choice": "')):
        start = reply.index(value, reply.index(key) + len(key))
        targets.append(Target(skill, 0, start, start + len(value)))
    messages = [
        {"role": "user", "content": [text_block(text)]},
        {"role": "assistant", "content": [text_block(reply)]},
    ]
    return Example("read_bare", messages, targets)


def probe(
    controller: str,
    steps: int = 1500,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
    options_format: str = "lines",
    eval_every: int = 100,
    heldout: int = 128,
    seed: int = 0,
):
    """Train on lettered answers only; yields the held-out scores at step 0 and every ``eval_every`` steps."""
    import torch

    from foveate.training.checkpoint import load_for_training
    from foveate.training.config import ModelSection
    from foveate.training.pretrain import Renderer, batch_loss, evaluate, subjects

    torch.manual_seed(seed)
    model, processor = load_for_training(controller, ModelSection(path=controller, dtype="float32"))
    renderer = Renderer(processor)
    trained, held = subjects(0.25)  # the pretraining stage's split: held-out subjects never trained on
    eval_rng = np.random.default_rng(EVAL_SEED)
    scored = [renderer(example(eval_rng, held, options_format), score=True) for _ in range(heldout)]
    # no weight decay, as the pretraining stage (PretrainRunConfig.weight_decay)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=learning_rate, weight_decay=0.0
    )
    rng = np.random.default_rng(seed)
    started, loss = time.perf_counter(), None

    def scores(step: int) -> dict:
        m = evaluate(model, scored, batch_size, renderer.pad_id)
        seconds = round(time.perf_counter() - started, 1)
        return {
            "step": step,
            "seconds": seconds,
            "loss": None if loss is None else round(loss, 4),
            "said": m["said"],
            "letter": m["letter"],
        }

    yield scores(0)
    model.train()
    for step in range(1, steps + 1):
        items = [renderer(example(rng, trained, options_format)) for _ in range(batch_size)]
        total, _ = batch_loss(model, items, renderer.pad_id)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        loss = float(total.detach())
        if step % eval_every == 0 or step == steps:
            yield scores(step)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], epilog="Prints one JSON object per evaluation."
    )
    parser.add_argument("controller", help="a saved controller folder, e.g. OUT/pretrain/controller")
    parser.add_argument("--steps", type=int, default=1500, help="training steps (default: 1500)")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per step (default: 32)")
    parser.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate (default: 2e-3)")
    parser.add_argument(
        "--options", choices=("lines", "json"), default="lines", help="how options are written (default: lines)"
    )
    parser.add_argument("--eval-every", type=int, default=100, help="steps between evaluations (default: 100)")
    args = parser.parse_args()
    from pathlib import Path

    if not (Path(args.controller) / "config.json").is_file():
        parser.error(f"{args.controller}: not a saved controller folder (no config.json)")
    for row in probe(args.controller, args.steps, args.batch_size, args.lr, args.options, args.eval_every):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
