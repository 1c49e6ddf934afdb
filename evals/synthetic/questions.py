"""Multiple-choice questions (five options) with evidence spans, derived from an event log.

Task families (the ``task`` field of a manifest row):

- ``needle``: "What colour was the star?" -- only about a shape that appears once (or a shape
  and direction that single out one sprite);
- ``direction``: "In which direction did the red triangle move?";
- ``counting``: "How many times did a blue circle appear?" / "How many blue shapes appeared?";
- ``order``: "Which appeared first: the red triangle, ... or the cyan square?";
- ``grounding``: "When did the green cross appear?" with time-span options like "12:30-12:45";
- ``text``: "What word appeared on the first text card after the red star?", options in capitals as
  the cards show them ("APPLE").

A question about "the red triangle" is only asked when exactly one red triangle appears, so
every answer is unique; :mod:`evals.synthetic.checks` re-derives each answer from the log and
the question text alone. Evidence spans are the spans of the events the answer depends on.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import numpy as np

from foveate.agent.records import ManifestRow
from foveate.evals.metrics import overlaps
from foveate.evals.synthetic.events import COLOURS, DIRECTIONS, WORDS, EventLog, SpriteEvent

LETTERS = "ABCDE"
NO_MOTION = "it did not move"
TASKS = ("needle", "direction", "counting", "order", "grounding", "text")


def format_clock(seconds: float) -> str:
    """``m:ss`` below an hour, ``h:mm:ss`` from an hour on."""
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def span_label(start: float, end: float) -> str:
    """A grounding option: whole seconds around ``[start, end)``, e.g. '12:30-12:45'."""
    return f"{format_clock(math.floor(start))}-{format_clock(math.ceil(end))}"


def name(sprite: SpriteEvent) -> str:
    return f"{sprite.colour} {sprite.shape}"


def unique_sprites(log: EventLog) -> list[SpriteEvent]:
    """Sprites whose colour+shape combination appears exactly once in the video."""
    counts = Counter(name(s) for s in log.sprites)
    return [s for s in log.sprites if counts[name(s)] == 1]


class _Builder:
    """Collects candidate questions of one log, grouped by task."""

    def __init__(self, log: EventLog, rng: np.random.Generator) -> None:
        self.log, self.rng = log, rng
        self.candidates: dict[str, list[dict]] = {t: [] for t in TASKS}

    def add(self, task: str, question: str, answer: str, distractors: list[str], evidence: list) -> None:
        """Five options: the answer and the first four distinct distractors, shuffled."""
        pool = list(dict.fromkeys(d for d in distractors if d != answer))
        if len(pool) < 4:
            return
        options = pool[:4] + [answer]
        options = [options[i] for i in self.rng.permutation(5)]
        spans = sorted((float(s.start_seconds), float(s.end_seconds)) for s in evidence)
        self.candidates[task].append(
            {
                "question": question,
                "options": options,
                "answer": LETTERS[options.index(answer)],
                "evidence": [list(s) for s in spans],
            }
        )

    def pick(self, choices: list[str], k: int) -> list[str]:
        return [choices[i] for i in self.rng.permutation(len(choices))[:k]]


def _needle(b: _Builder) -> None:
    log = b.log
    shapes = Counter(s.shape for s in log.sprites)
    shape_dir = Counter((s.shape, s.direction) for s in log.sprites)
    for s in log.sprites:
        same_shape = [o.colour for o in log.sprites if o.shape == s.shape and o.colour != s.colour]
        others = list(dict.fromkeys(same_shape + b.pick([c for c in COLOURS if c != s.colour], 6)))
        if shapes[s.shape] == 1:
            b.add("needle", f"What colour was the {s.shape}?", s.colour, others, [s])
        elif shape_dir[(s.shape, s.direction)] == 1:
            b.add("needle", f"What colour was the {s.shape} that moved {s.direction}?", s.colour, others, [s])


def _direction(b: _Builder) -> None:
    for s in unique_sprites(b.log):
        b.add(
            "direction",
            f"In which direction did the {name(s)} move?",
            s.direction,
            [d for d in DIRECTIONS if d != s.direction] + [NO_MOTION],
            [s],
        )


def _counting(b: _Builder) -> None:
    log = b.log
    by_name: dict[str, list[SpriteEvent]] = {}
    by_colour: dict[str, list[SpriteEvent]] = {}
    for s in log.sprites:
        by_name.setdefault(name(s), []).append(s)
        by_colour.setdefault(s.colour, []).append(s)

    def add(question: str, events: list[SpriteEvent]) -> None:
        n = len(events)
        # Any window of five counts holding n, shuffled: neither the position nor "the smallest" gives it away.
        low = int(b.rng.integers(max(0, n - 4), n + 1))
        b.add("counting", question, str(n), [str(k) for k in range(low, low + 5)], events)

    for key in b.pick(sorted(by_name), 8):
        colour, shape = key.split(" ")
        add(f"How many times did a {colour} {shape} appear?", by_name[key])
    for colour in sorted(by_colour):
        add(f"How many {colour} shapes appeared?", by_colour[colour])


def _order(b: _Builder) -> None:
    uniques = unique_sprites(b.log)
    if len(uniques) < 5:
        return
    for which in ("first", "last"):
        for _ in range(3):
            chosen = [uniques[i] for i in sorted(b.rng.permutation(len(uniques))[:5])]
            target = chosen[0] if which == "first" else chosen[-1]
            order = [chosen[i] for i in b.rng.permutation(5)]
            listed = ", ".join(f"the {name(s)}" for s in order[:4]) + f" or the {name(order[4])}"
            b.add(
                "order",
                f"Which appeared {which}: {listed}?",
                f"the {name(target)}",
                [f"the {name(s)}" for s in order if s is not target],
                chosen,
            )


def _label_span(s: SpriteEvent) -> tuple[float, float]:
    return float(math.floor(s.start_seconds)), float(math.ceil(s.end_seconds))


def _grounding(b: _Builder) -> None:
    log = b.log
    for s in unique_sprites(log):
        taken = [_label_span(s)]
        others = [o for o in log.sprites if o is not s]
        for o in [others[i] for i in b.rng.permutation(len(others))]:  # other events' times: plausible distractors
            if len(taken) == 5:
                break
            if not any(overlaps(_label_span(o), t) for t in taken):
                taken.append(_label_span(o))
        length = taken[0][1] - taken[0][0]
        for _ in range(200):  # short videos: fill up with random windows
            if len(taken) == 5 or log.duration_seconds <= length:
                break
            start = float(b.rng.integers(0, int(log.duration_seconds - length) + 1))
            if not any(overlaps((start, start + length), t) for t in taken):
                taken.append((start, start + length))
        labels = [span_label(a, c) for a, c in taken]
        b.add("grounding", f"When did the {name(s)} appear?", labels[0], labels[1:], [s])


def _text(b: _Builder) -> None:
    log = b.log
    if not log.cards:
        return
    card_words = [c.word.upper() for c in log.cards]  # options as the cards show them, in capitals

    def ask(question: str, card, evidence: list) -> None:
        word = card.word.upper()
        distractors = [w for w in card_words if w != word] + b.pick([w.upper() for w in WORDS if w.upper() != word], 8)
        b.add("text", question, word, distractors, evidence)

    first, last = log.cards[0], log.cards[-1]
    ask("What word appeared on the first text card?", first, [first])
    if len(log.cards) > 1:
        ask("What word appeared on the last text card?", last, [last])
    for s in unique_sprites(log):
        card = next((c for c in log.cards if c.start_seconds >= s.end_seconds), None)
        if card is not None:
            ask(f"What word appeared on the first text card after the {name(s)}?", card, [s, card])


BUILDERS: dict[str, Callable[[_Builder], None]] = {
    "needle": _needle,
    "direction": _direction,
    "counting": _counting,
    "order": _order,
    "grounding": _grounding,
    "text": _text,
}


def make_questions(log: EventLog, video: str, vid: str, n: int, seed: int) -> list[ManifestRow]:
    """Up to ``n`` questions about ``log``, spread over the task families (round robin, seeded).

    ``video`` is the path written into the rows, ``vid`` the id prefix (ids are ``<vid>-q<j>``).
    """
    b = _Builder(log, np.random.default_rng(seed))
    for task in TASKS:
        BUILDERS[task](b)
    pools = {t: [c[i] for i in b.rng.permutation(len(c))] for t, c in b.candidates.items() if c}
    order = [t for t in TASKS if t in pools]
    order = [order[i] for i in b.rng.permutation(len(order))]
    picked: list[tuple[str, dict]] = []
    seen: set[str] = set()
    while len(picked) < n and any(pools.values()):
        for task in order:
            while pools.get(task):
                cand = pools[task].pop()
                if cand["question"] not in seen:
                    seen.add(cand["question"])
                    picked.append((task, cand))
                    break
            if len(picked) == n:
                break
    picked.sort(key=lambda tc: (tc[1]["evidence"][0][0], tc[0]))
    return [
        ManifestRow(id=f"{vid}-q{j}", video=video, task=task, duration_s=log.duration_seconds, **cand)
        for j, (task, cand) in enumerate(picked)
    ]
