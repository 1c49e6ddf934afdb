"""Multiple-choice questions (5 options) with evidence spans, derived from an event log."""

from __future__ import annotations

import numpy as np

from agent.records import ManifestRow
from evals.synthetic.world import COLOURS, DIRECTIONS, EventLog, SpriteEvent


def _options(rng: np.random.Generator, answer: str, pool: list[str]) -> tuple[list[str], str]:
    others = [p for p in pool if p != answer]
    opts = list(rng.choice(others, size=min(4, len(others)), replace=False)) + [answer]
    rng.shuffle(opts)
    return [str(o) for o in opts], "ABCDE"[opts.index(answer)]


def _span(e) -> list[float]:
    return [e.start_seconds, e.end_seconds]


def make_questions(log: EventLog, video: str, vid: str, n: int, seed: int) -> list[ManifestRow]:
    rng = np.random.default_rng(seed)
    by_shape: dict[str, list[SpriteEvent]] = {}
    for sp in log.sprites:
        by_shape.setdefault(sp.shape, []).append(sp)
    rows: list[ManifestRow] = []
    uniques = [evs[0] for evs in by_shape.values() if len(evs) == 1]
    for sp in uniques:  # needle: the only <shape> in the video
        opts, ans = _options(rng, sp.colour, list(COLOURS))
        rows.append(ManifestRow(id="", video=video, question=f"What colour was the {sp.shape}?", options=opts, answer=ans,
                                evidence=[_span(sp)], task="needle", duration_s=log.duration_seconds))
        opts, ans = _options(rng, sp.direction, list(DIRECTIONS) + ["it did not move"])
        rows.append(ManifestRow(id="", video=video, question=f"In which direction did the {sp.colour} {sp.shape} move?",
                                options=opts, answer=ans, evidence=[_span(sp)], task="direction", duration_s=log.duration_seconds))
        m = int(log.duration_seconds)
        wrong: list[int] = []
        for _ in range(200):  # distractor spans far from the true one; short videos may have no room
            s = int(rng.integers(0, max(1, m - 5)))
            if abs(s - sp.start_seconds) > 8 and all(abs(s - w) > 3 for w in wrong):
                wrong.append(s)
            if len(wrong) == 4:
                break
        if len(wrong) < 4:
            continue
        spans = [f"{int(sp.start_seconds)}-{int(np.ceil(sp.end_seconds))}s"] + [f"{w}-{w + int(np.ceil(sp.end_seconds - sp.start_seconds))}s" for w in wrong]
        opts, ans = _options(rng, spans[0], spans)
        rows.append(ManifestRow(id="", video=video, question=f"When did the {sp.colour} {sp.shape} appear?", options=opts,
                                answer=ans, evidence=[_span(sp)], task="grounding", duration_s=log.duration_seconds))
    colours = sorted({sp.colour for sp in log.sprites})
    for colour in colours[:2]:  # counting
        evs = [sp for sp in log.sprites if sp.colour == colour]
        count = str(len(evs))
        pool = [str(k) for k in range(max(0, len(evs) - 2), len(evs) + 5)]
        opts, ans = _options(rng, count, pool)
        rows.append(ManifestRow(id="", video=video, question=f"How many {colour} shapes crossed the screen?", options=opts,
                                answer=ans, evidence=[_span(e) for e in evs], task="counting", duration_s=log.duration_seconds))
    for card in log.cards[:1]:
        opts, ans = _options(rng, card.word, ["apple", "river", "candle", "orbit", "maple", "zebra", "copper", "violet"])
        rows.append(ManifestRow(id="", video=video, question="Which word appeared on the text card?", options=opts,
                                answer=ans, evidence=[_span(card)], task="text", duration_s=log.duration_seconds))
    picks = rng.permutation(len(rows))[:n]
    return [rows[i].model_copy(update={"id": f"{vid}-q{j}"}) for j, i in enumerate(sorted(picks))]


def check_answer(row: ManifestRow, log: EventLog) -> bool:
    """Re-derive the answer of ``row`` from the log: True when the stored letter is right."""
    chosen = row.options["ABCDE".index(row.answer)]
    q = row.question
    if row.task == "needle":
        shape = q.split("the ")[-1].rstrip("?")
        return [sp.colour for sp in log.sprites if sp.shape == shape] == [chosen]
    if row.task == "direction":
        colour, shape = q.split("did the ")[1].split(" move")[0].split(" ")
        return [sp.direction for sp in log.sprites if sp.shape == shape and sp.colour == colour] == [chosen]
    if row.task == "counting":
        colour = q.split("How many ")[1].split(" ")[0]
        return sum(sp.colour == colour for sp in log.sprites) == int(chosen)
    if row.task == "grounding":
        colour, shape = q.split("did the ")[1].split(" appear")[0].split(" ")
        sp = next(s for s in log.sprites if s.shape == shape and s.colour == colour)
        return chosen == f"{int(sp.start_seconds)}-{int(np.ceil(sp.end_seconds))}s"
    if row.task == "text":
        return chosen in [c.word for c in log.cards]
    return False
