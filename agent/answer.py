"""The one final-answer format, shared by the agent loop, SFT data and GRPO rewards.

The controller ends a turn with::

    <answer>{"answer": "red", "choice": "B", "evidence": [[12.0, 18.5]]}</answer>

``choice`` is an option letter (omitted or null for open questions), ``answer`` the text,
``evidence`` a list of half-open ``[start_seconds, end_seconds)`` spans and clip handles that
``retrieve`` printed (``"evidence": ["c2", [30.0, 34.5]]``); handles are resolved to their spans.
For a "when" question the answer may be a clip's handle or times (``"answer": "c2"``, read back as
``"12.0-16.0s"``): with time-span options, it picks the option it overlaps most.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, Field

ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
LETTERS = "ABCDEFGHIJ"


class Answer(BaseModel):
    """The controller's final answer."""

    text: str = Field(default="", description="Free-text answer.")
    choice: str | None = Field(default=None, description="Option letter, when the question had options.")
    evidence: list[tuple[float, float]] = Field(
        default_factory=list, description="Evidence spans, seconds, half-open."
    )
    valid: bool = Field(default=True, description="False when the model's output had no parseable answer.")


def format_answer(answer: Answer, cite: Sequence[str | tuple[float, float]] | None = None) -> str:
    """Render an Answer in the exact format `parse_answer` reads back.

    ``cite``: the evidence to write instead of ``answer.evidence``, clip handles (``"c2"``) and spans.
    """
    evidence = answer.evidence if cite is None else cite
    payload: dict = {"answer": answer.text}
    if answer.choice is not None:  # an option's text picks it; the letter is written only when given
        payload["choice"] = answer.choice
    payload["evidence"] = [
        item if isinstance(item, str) else [round(item[0], 2), round(item[1], 2)] for item in evidence
    ]
    return "<answer>" + json.dumps(payload) + "</answer>"


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD-style)."""
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_CLOCK = r"(?:\d+:)?\d+:\d{2}(?:\.\d+)?"
_SECONDS = r"\d+(?:\.\d+)?"
_CLOCK_SPAN_RE = re.compile(rf"({_CLOCK})\s*(?:-|–|to)\s*({_CLOCK})")
_SECONDS_SPAN_RE = re.compile(rf"({_SECONDS})\s*s?\s*(?:-|–|to)\s*({_SECONDS})\s*s")


def clock_seconds(clock: str) -> float:
    """'01:02:03' / '12:30' / '12:30.5' / '123.5' -> seconds; ValueError for anything else."""
    total = 0.0
    for part in str(clock).strip().split(":"):
        total = total * 60 + float(part)
    return total


def time_span(text: str, handles: Mapping[str, tuple[float, float]] | None = None) -> tuple[float, float] | None:
    """A span an answer's text names, or None: a clip handle (``"c2"``), clock times (``"0:08-0:12"``,
    ``"1:02:03 to 1:02:09"``) or seconds with their unit (``"8.0-12.0s"``, ``"8 to 12 s"``)."""
    text = text.strip().lower()
    if handles and text in handles:
        return handles[text]
    for pattern, convert in ((_CLOCK_SPAN_RE, clock_seconds), (_SECONDS_SPAN_RE, float)):
        m = pattern.fullmatch(text)
        if m:
            start, end = convert(m[1]), convert(m[2])
            return (start, end) if end > start else None
    return None


def _overlapping_option(span: tuple[float, float], options: Sequence[str]) -> int | None:
    """The index of the option span that ``span`` overlaps most, when every option is a span and one wins."""
    spans = [time_span(o) for o in options]
    if not all(spans):
        return None
    overlaps = [max(0.0, min(span[1], o[1]) - max(span[0], o[0])) for o in spans]
    best = max(overlaps)
    return overlaps.index(best) if best > 0 and overlaps.count(best) == 1 else None


def chosen_letter(
    choice: str | None,
    text: str,
    options: Sequence[str],
    handles: Mapping[str, tuple[float, float]] | None = None,
) -> str | None:
    """The option an answer picks: its ``choice`` letter, else a bare letter as its text (``"(C)"``),
    else the one option whose text its text is (normalised: case, punctuation, articles), else -- when
    every option is a time span ("When did ...?") and the text names a span (clock times, seconds, or a
    clip handle resolved with ``handles``) -- the option it overlaps most; None otherwise."""
    letters = LETTERS[: len(options)]
    if choice and choice.strip().upper()[:1] in letters:
        return choice.strip().upper()[:1]
    m = re.fullmatch(r"\(?([A-J])[).:]?", text.strip().upper())
    if m and m[1] in letters:
        return m[1]
    norm = normalize_answer(text)
    matches = [letters[i] for i, o in enumerate(options) if norm and normalize_answer(o) == norm]
    if len(matches) == 1:
        return matches[0]
    span = time_span(text, handles)
    index = _overlapping_option(span, options) if span is not None and not matches else None
    return letters[index] if index is not None else None


def _span(item: object, handles: Mapping[str, tuple[float, float]]) -> tuple[float, float] | None:
    """An evidence item as a span: a handle's span, a pair of numbers, else None."""
    if isinstance(item, str):
        return handles.get(item.strip().lower())
    if isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(x, (int, float)) for x in item):
        return float(item[0]), float(item[1])
    return None


def parse_answer(
    text: str,
    options: Sequence[str] | None = None,
    duration_seconds: float | None = None,
    handles: Mapping[str, tuple[float, float]] | None = None,
) -> Answer | None:
    """Parse the last ``<answer>`` block; None when there is none or it is not valid JSON.

    With ``options``, ``choice`` is the option the answer picks (:func:`chosen_letter`: its letter,
    else its text, else for time-span options the span its text or clip handle names). An answer that
    is a clip handle is read back as the clip's times (``"12.0-16.0s"``). Evidence items are spans or
    clip handles, resolved with ``handles`` (the toolbox's ``{"c1": (start_seconds, end_seconds), ...}``).
    Spans are clipped to ``[0, duration_seconds]``; spans that are empty after clipping, items that are
    not pairs of numbers, and unknown handles are dropped.
    """
    matches = ANSWER_RE.findall(text or "")
    if not matches:
        return None
    try:
        payload = json.loads(matches[-1].strip())
    except json.JSONDecodeError:
        return None
    if not isinstance(payload, dict):
        return None
    choice = payload.get("choice")
    choice = choice.strip().upper()[:1] if isinstance(choice, str) and choice.strip() else None
    text_answer = payload.get("answer")
    text_answer = str(text_answer) if text_answer is not None else None
    if options:
        choice = chosen_letter(choice, text_answer or "", options, handles)
    if text_answer is not None and handles and text_answer.strip().lower() in handles:  # "when": a clip's times
        start, end = handles[text_answer.strip().lower()]
        text_answer = f"{start:.1f}-{end:.1f}s"
    spans: list[tuple[float, float]] = []
    evidence = payload.get("evidence") or []
    if isinstance(evidence, str):  # a lone handle, "evidence": "c2"
        evidence = [evidence]
    for item in evidence if isinstance(evidence, list) else []:
        span = _span(item, handles or {})
        if span is None:
            continue
        start, end = max(0.0, span[0]), span[1]
        if duration_seconds is not None:
            end = min(end, duration_seconds)
        if end > start:
            spans.append((start, end))
    return Answer(text=text_answer if text_answer is not None else (choice or ""), choice=choice, evidence=spans)


def matches_gold(answer: Answer | None, gold: str | None, options: list[str] | None) -> bool:
    """The answer is right: it picks the gold option (:func:`chosen_letter`) when there are options, else
    it is the gold text (case and spacing aside)."""
    if answer is None or not answer.valid or gold is None:
        return False
    if options:
        return chosen_letter(answer.choice, answer.text, options) == gold.strip().upper()[:1]
    return " ".join(answer.text.lower().split()) == " ".join(gold.lower().split())
