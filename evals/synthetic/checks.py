"""Independent answer checkers: re-derive each question's answer from the event log.

They read only the question text, the options and the log (never the generator's internals),
so a generator bug that writes a wrong letter, an ambiguous question or a second correct option
shows up as a failed check.
"""

from __future__ import annotations

import re

from foveate.agent.answer import clock_seconds
from foveate.agent.records import ManifestRow
from foveate.evals.synthetic.events import EventLog, SpriteEvent

LETTERS = "ABCDE"


def parse_span_label(label: str) -> tuple[float, float]:
    """'12:30-12:45' -> (750.0, 765.0)."""
    start, end = label.split("-")
    return clock_seconds(start), clock_seconds(end)


def _only(sprites: list[SpriteEvent]) -> SpriteEvent | None:
    return sprites[0] if len(sprites) == 1 else None


def _named(log: EventLog, colour: str, shape: str) -> SpriteEvent | None:
    return _only([s for s in log.sprites if s.colour == colour and s.shape == shape])


def _correct_options(row: ManifestRow, log: EventLog) -> list[str] | None:
    """The options that are right according to the log; None when the question is not understood."""
    q, opts = row.question, row.options or []
    if m := re.fullmatch(r"What colour was the (\w+)\?", q):
        s = _only([s for s in log.sprites if s.shape == m[1]])
        return [o for o in opts if s and o == s.colour]
    if m := re.fullmatch(r"What colour was the (\w+) that moved (\w+)\?", q):
        s = _only([s for s in log.sprites if s.shape == m[1] and s.direction == m[2]])
        return [o for o in opts if s and o == s.colour]
    if m := re.fullmatch(r"In which direction did the (\w+) (\w+) move\?", q):
        s = _named(log, m[1], m[2])
        return [o for o in opts if s and o == s.direction]
    if m := re.fullmatch(r"How many times did a (\w+) (\w+) appear\?", q):
        n = sum(s.colour == m[1] and s.shape == m[2] for s in log.sprites)
        return [o for o in opts if o == str(n)]
    if m := re.fullmatch(r"How many (\w+) shapes appeared\?", q):
        n = sum(s.colour == m[1] for s in log.sprites)
        return [o for o in opts if o == str(n)]
    if m := re.fullmatch(r"Which appeared (first|last): (.+)\?", q):
        return _order_correct(log, m[1], opts)
    if m := re.fullmatch(r"When did the (\w+) (\w+) appear\?", q):
        s = _named(log, m[1], m[2])
        return [o for o in opts if s and _covers(parse_span_label(o), s)] if s else []
    if m := re.fullmatch(r"What word appeared on the (first|last) text card\?", q):
        card = (log.cards[0] if m[1] == "first" else log.cards[-1]) if log.cards else None
        return [o for o in opts if card and o == card.word.upper()]
    if m := re.fullmatch(r"What word appeared on the first text card after the (\w+) (\w+)\?", q):
        s = _named(log, m[1], m[2])
        card = next((c for c in log.cards if s and c.start_seconds >= s.end_seconds), None)
        return [o for o in opts if card and o == card.word.upper()]
    return None


def _covers(span: tuple[float, float], s: SpriteEvent) -> bool:
    """A grounding option is right when it contains the sprite's span and is at most 2 s wider."""
    return (
        span[0] <= s.start_seconds
        and s.end_seconds <= span[1]
        and (span[1] - span[0]) - (s.end_seconds - s.start_seconds) < 2.0
    )


def _order_correct(log: EventLog, which: str, opts: list[str]) -> list[str]:
    sprites = []
    for o in opts:
        m = re.fullmatch(r"the (\w+) (\w+)", o)
        s = _named(log, m[1], m[2]) if m else None
        if s is None:
            return []
        sprites.append((s.start_seconds, o))
    sprites.sort()
    return [sprites[0][1] if which == "first" else sprites[-1][1]]


def check_answer(row: ManifestRow, log: EventLog) -> bool:
    """True when exactly one option is right according to the log and ``row.answer`` names it."""
    if not row.options or len(set(row.options)) != len(row.options) or row.answer is None:
        return False
    if row.answer not in LETTERS[: len(row.options)]:
        return False
    correct = _correct_options(row, log)
    return correct is not None and len(correct) == 1 and row.options[LETTERS.index(row.answer)] == correct[0]


def evidence_events(row: ManifestRow, log: EventLog) -> list[SpriteEvent | object]:
    """The log events whose spans are exactly the row's evidence spans (missing ones are left out)."""
    events = list(log.sprites) + list(log.cards)
    out = []
    for start, end in row.evidence or []:
        out += [e for e in events if abs(e.start_seconds - start) < 1e-6 and abs(e.end_seconds - end) < 1e-6][:1]
    return out
