"""An oracle controller for SFT data: it reads the world's event log and the question's evidence.

It writes what a good controller would write (``retrieve`` with a query naming the thing asked
about, then ``zoom`` or ``dense_sample`` on the right window, then the final answer with the true
evidence), with varied paths drawn from a seeded RNG: sometimes a wrong first window and a
correction, sometimes retrieval alone, sometimes no retrieval, dense sampling for motion and
counting. Given the memory's ``search`` (the function the retrieve tool calls), it reads the hits
its query will get, as a controller reads the tool result: it names the clip that matches, and
when the top clip misses the event it sometimes checks that clip first and then corrects itself,
so its wrong guesses are the ones retrieval really suggests.

Where it looks at a retrieved clip it writes the clip's handle (``zoom(clip="c1")``), as the
retrieve tool prints it: the oracle numbers the hits with the tool's own
:class:`foveate.tools.handles.ClipHandles`, in the order its retrieve calls run. Windows of its
own (padded event windows, wrong guesses) are written in seconds.

With ``look_at="retrieved"`` it uses the ground truth only to choose among what the tools show:
it always retrieves, looks at the retrieved clips that show the event (by handle), and cites
those handles as evidence. Everything it writes is then something a controller can read off the
retrieve result, so a small model trained on it can learn the procedure rather than memorise
event times; a question whose event no retrieved clip shows gets no episode. "Which appeared first
(last)?" gets one retrieve of all its options by letter (``["A", "B", "C", "D", "E"]``), whose result
lists their best clips in time order, each line starting with its option's letter, and the letter on
the first (last) line as the answer, when that is the gold one.

Its outputs are only text; :func:`training.episodes.run_scripted` executes them in the agent's
own loop on the real toolbox and VideoMemory, so the images and tool results in the SFT data are
exactly what the agent sees.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from foveate.agent.answer import LETTERS, Answer, chosen_letter, format_answer
from foveate.agent.config import AgentConfig
from foveate.agent.records import ManifestRow
from foveate.agent.toolcalls import format_tool_call as tool_call
from foveate.evals.metrics import overlaps
from foveate.tools.handles import ClipHandles
from foveate.tools.retrieve import in_time_order
from foveate.tools.toolbox import MAX_DENSE_FRAMES

if TYPE_CHECKING:
    from foveate.memory.video_memory import ClipHit

Span = tuple[float, float]


class OracleConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    p_skip_retrieve: float = Field(
        default=0.2, ge=0, le=1, description="Probability of looking without retrieving first."
    )
    p_wrong_window: float = Field(
        default=0.2, ge=0, le=1, description="Probability of a wrong first window, then a correction."
    )
    p_check_top_hit: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Probability of zooming on the top retrieved clip first when it misses the event "
        "(then correcting).",
    )
    p_retrieve_only: float = Field(
        default=0.15, ge=0, le=1, description="Probability of answering from retrieval alone (single-event questions)."
    )
    p_dense: float = Field(
        default=0.15, ge=0, le=1, description="Probability of dense_sample instead of zoom where zoom would do."
    )
    p_thought: float = Field(
        default=0.5, ge=0, le=1, description="Probability of a short sentence before each tool call."
    )
    max_pad_seconds: float = Field(
        default=1.5, ge=0, description="Windows extend the evidence by up to this much on each side."
    )
    describe: bool = Field(
        default=False,
        description="Before the answer, say what the frames looked at show, in the words of the world's "
        "captions ('The frames show a red star moving left.'), for questions about one event; the answer's "
        "words can then be read off that sentence and its letter off the options.",
    )
    describe_unseen_motion: bool = Field(
        default=True,
        description="A description names the sprite's direction ('moving left') even when nothing in the episode "
        "shows it: no dense_sample's motion line and no question naming it (one zoom's frames do not). Off: "
        "'The frames show a red star.', so that the word after 'moving' is always one the context holds and "
        "the direction can be copied from the motion line rather than guessed.",
    )
    retrieve_k: tuple[int, ...] = Field(
        default=(3, 5),
        min_length=1,
        description="The k of each retrieve call, drawn from these (each listed clip costs a thumbnail frame).",
    )
    zoom_frames: tuple[int, ...] = Field(
        default=(2, 3, 4), min_length=1, description="num_frames of a zoom on a clip, drawn from these."
    )
    dense_fps: float = Field(
        default=2.0,
        gt=0,
        description="fps of a dense_sample on a retrieved clip (look_at='retrieved'); the motion line does "
        "not depend on it, the frames spent do.",
    )
    look_at: Literal["evidence", "retrieved"] = Field(
        default="evidence",
        description="'evidence': look at (padded) true event windows and cite the true spans; "
        "'retrieved': look at the retrieved clips that show the event and cite them "
        "(needs the memory's search; no detours).",
    )


def focus_span(row: ManifestRow, log) -> Span:
    """The evidence span an episode looks at first: the event its answer names.

    For "Which appeared first/last: ...?" that is the gold option's sprite (the evidence lists all five
    in time order); for every other question, the first evidence span.
    """
    spans = [tuple(s) for s in row.evidence]
    if row.task == "order" and row.options and row.answer:
        gold = row.options[LETTERS.index(row.answer.strip().upper()[:1])].removeprefix("the ")
        for span in spans:
            sprite = _thing_at(log.sprites, span)
            if sprite is not None and f"{sprite.colour} {sprite.shape}" == gold:
                return span
    return spans[0]


def _subject(row: ManifestRow, log, span: Span) -> str:
    """What the question is about, as a retrieval query would name it."""
    sprite = _thing_at(log.sprites, span)
    if row.task == "text":
        return "a text card with a word"
    if row.task == "counting":
        named = re.search(r"did an? (\w+) (\w+) appear", row.question)  # "How many times did a blue cross appear?"
        if named:
            return f"a {named[1]} {named[2]}"
        colour = re.search(r"How many (\w+) shapes", row.question)  # "How many blue shapes appeared?"
        return f"{colour[1]} shapes" if colour else row.question.rstrip("?")
    if sprite is not None and row.task == "needle":  # "the square" or "the square that moved left"
        moved = f" moving {sprite.direction}" if "that moved" in row.question else ""
        return f"a {sprite.shape}{moved}"
    if sprite is not None:
        return f"a {sprite.colour} {sprite.shape}"
    return row.question.rstrip("?")


DESCRIBED_TASKS = ("needle", "direction", "grounding", "text")  # one event answers them


def _thing_at(things, span: Span):
    """The sprite or text card of ``things`` on screen exactly over ``span``, or None."""
    return next(
        (t for t in things if abs(t.start_seconds - span[0]) < 1e-6 and abs(t.end_seconds - span[1]) < 1e-6), None
    )


def _event(log, span: Span) -> str | None:
    """The world's caption phrase of the sprite or text card whose span is ``span``."""
    from foveate.evals.synthetic.captions import card_phrase, sprite_phrase

    for things, phrase in ((log.sprites, sprite_phrase), (log.cards, card_phrase)):
        if (thing := _thing_at(things, span)) is not None:
            return phrase(thing)
    return None


def _unseen_motion_dropped(event: str, question: str, calls: list[str]) -> str:
    """``event`` ('a red star moving left') without its direction unless a dense_sample call's motion line
    or the question ('... the star that moved left?') shows it."""
    moving = re.search(r" moving (\w+)$", event)
    if moving is None or re.search(rf"\bmoved {moving[1]}\b", question):
        return event
    if any('"name": "dense_sample"' in call for call in calls):
        return event
    return event[: moving.start()]


def _query(subject: str, rng: np.random.Generator) -> str:
    """One of the ways a retrieval query names the subject."""
    return str(rng.choice([subject, f"{subject} crossing the screen", f"the {subject.removeprefix('a ')}"]))


def _shows(hit: ClipHit, spans: list[Span]) -> bool:
    """Whether a retrieved clip shares time with any of ``spans``."""
    return any(overlaps((hit.start_seconds, hit.end_seconds), span) for span in spans)


def _wrong_window(rng: np.random.Generator, spans: list[Span], length: float, duration: float) -> Span | None:
    for _ in range(50):
        start = float(rng.uniform(0, max(0.0, duration - length)))
        if all(start + length < s - 5 or start > e + 5 for s, e in spans):
            return round(start, 1), round(min(duration, start + length), 1)
    return None


class OraclePolicy:
    """Scripted controller outputs for one question, from the world's ground truth."""

    def __init__(self, config: OracleConfig = OracleConfig(), agent: AgentConfig = AgentConfig()) -> None:
        self.config, self.agent = config, agent

    def outputs(
        self,
        row: ManifestRow,
        log,
        duration_seconds: float,
        rng: np.random.Generator,
        search: Callable[[str, int], list] | None = None,
    ) -> list[str] | None:
        """The controller texts of one episode: tool calls, each its own turn, then the answer.

        ``search(query, k)``: the hits the retrieve tool will show (``VideoMemory.search``), best first.
        None when ``look_at="retrieved"`` and no retrieved clip shows the event.
        """
        if not row.evidence or row.answer is None:
            raise ValueError(f"{row.id}: the oracle needs a ground-truth answer and evidence")
        focus = focus_span(row, log)
        spans = [focus, *(tuple(s) for s in row.evidence if tuple(s) != focus)]  # the look goes to spans[0]
        handles = ClipHandles()  # what the episode's retrieve calls will name the clips, call after call
        cite: list[str | Span] = [tuple(s) for s in row.evidence]  # in time order
        if self.config.look_at == "retrieved":
            if search is None:
                raise ValueError("look_at='retrieved' needs the memory's search function")
            planned = self._plan_retrieved(row, log, spans, rng, search, handles)
            if planned is None:
                return None
            calls, cite = planned
        else:
            calls = self._plan(row, log, spans, duration_seconds, rng, search, handles)
        by_letter = row.task == "order" and self.config.look_at == "retrieved"  # read off the result's line
        final = self._answer(row, cite, handles.as_dict(), by_letter)
        if self.config.describe and row.task in DESCRIBED_TASKS:
            event = _event(log, spans[-1] if row.task == "text" else spans[0])
            if event is not None and not self.config.describe_unseen_motion:
                event = _unseen_motion_dropped(event, row.question, [call for _, call in calls])
            if event is not None:
                final = f"The frames show {event}.\n{final}"  # training.pretrain.DESCRIBED
        return [self._say(text, rng) + call for text, call in calls] + [final]

    def _plan_retrieved(
        self,
        row: ManifestRow,
        log,
        spans: list[Span],
        rng: np.random.Generator,
        search: Callable[[str, int], list],
        handles: ClipHandles,
    ) -> tuple[list[tuple[str, str]], list[str]] | None:
        """Retrieve, then look at the retrieved clips that show the event; cite those clips' handles."""
        if row.task == "order":
            return self._plan_order(row, search, handles)
        subject = _subject(row, log, spans[0])
        k = int(rng.choice(self.config.retrieve_k))
        query = _query(subject, rng)
        hits = search(query, k)
        names = [handles.name(h.start_seconds, h.end_seconds) for h in hits]
        matching = [(n, h) for n, h in zip(names, hits) if _shows(h, spans)]
        looks = max(0, self.agent.max_steps - 3)  # after the retrieve call, before the answer turn
        if not matching or looks == 0:
            return None
        frames_left = (self.agent.max_frames or 10**6) - k - 1  # the last frame keeps the budget from running out
        calls = [(f"Let me find {subject}.", tool_call("retrieve", query=query, k=k))]
        cited: list[str] = []
        for name, hit in matching[: looks if row.task == "counting" else 1]:
            seen = f"Clip {name} ({hit.start_seconds:.1f}-{hit.end_seconds:.1f}s) shows {subject}."
            if row.task == "direction" or rng.random() < self.config.p_dense:
                fps = self.config.dense_fps
                n = min(MAX_DENSE_FRAMES, math.ceil((hit.end_seconds - hit.start_seconds) * fps))  # as the tool counts
                call = tool_call("dense_sample", clip=name, fps=fps)
            else:
                n = int(rng.choice(self.config.zoom_frames))
                call = tool_call("zoom", clip=name, num_frames=n)
            if n > frames_left:
                break
            frames_left -= n
            calls.append((seen, call))
            cited.append(name)
        return (calls, cited) if cited else None

    @staticmethod
    def _plan_order(
        row: ManifestRow, search: Callable[[str, int], list], handles: ClipHandles
    ) -> tuple[list[tuple[str, str]], list[str]] | None:
        """ "Which appeared first (last): ...?": one retrieve of every option by letter, whose result lists their
        best clips in time order; the answer is the letter on its first (last) line, when that is the gold one."""
        found = in_time_order(search, list(row.options), 1)
        if len(found) != len(row.options):
            return None
        names = [handles.name(h.start_seconds, h.end_seconds) for _, h in found]
        pick = 0 if "appeared first" in row.question else -1
        gold = row.options[LETTERS.index(row.answer.strip().upper()[:1])]
        if found[pick][0] != gold:
            return None  # retrieval put another option first (last): no episode
        which = "first" if pick == 0 else "last"
        calls = [
            (
                f"Listing when each of them appeared; the {which} one answers.",
                tool_call("retrieve", query=list(LETTERS[: len(row.options)]), k=1),
            )
        ]
        return calls, [names[pick]]

    def _plan(
        self,
        row: ManifestRow,
        log,
        spans: list[Span],
        duration: float,
        rng: np.random.Generator,
        search: Callable[[str, int], list] | None,
        handles: ClipHandles,
    ) -> list[tuple[str, str]]:
        c = self.config
        subject = _subject(row, log, spans[0])
        plan: list[tuple[str, str, int]] = []  # (thought, call, frames it spends)
        match = None  # (handle, hit) of the first retrieved clip that shows the event
        if rng.random() >= c.p_skip_retrieve:
            k = int(rng.choice(c.retrieve_k))
            query = _query(subject, rng)
            plan.append((f"Let me find {subject}.", tool_call("retrieve", query=query, k=k), k))
            if len(spans) == 1 and row.task in ("needle", "grounding", "text") and rng.random() < c.p_retrieve_only:
                return [(t, call) for t, call, _ in plan]
            hits = search(query, k) if search is not None else []
            names = [handles.name(h.start_seconds, h.end_seconds) for h in hits]
            # The clip named before the look must show the window looked at (the first evidence span).
            match = next(((n, h) for n, h in zip(names, hits) if _shows(h, spans[:1])), None)
            top_misses = bool(hits) and not _shows(hits[0], spans)
            if top_misses and rng.random() < c.p_check_top_hit:
                top = hits[0]
                plan.append(
                    (
                        f"Checking clip {names[0]} ({top.start_seconds:.1f}-{top.end_seconds:.1f}s) first.",
                        tool_call("zoom", clip=names[0], num_frames=2),
                        2,
                    )
                )
        if not any(t.startswith("Checking") for t, *_ in plan) and rng.random() < c.p_wrong_window:
            length = spans[0][1] - spans[0][0]
            wrong = _wrong_window(rng, spans, length, duration)
            if wrong is not None:
                plan.append(
                    ("Checking this window first.", tool_call("zoom", start=wrong[0], end=wrong[1], num_frames=2), 2)
                )
        plan += self._looks(row, spans, subject, duration, rng, match)
        return self._fit(plan)

    def _window(self, span: Span, duration: float, rng: np.random.Generator) -> Span:
        pad = self.config.max_pad_seconds
        start = max(0.0, span[0] - float(rng.uniform(0, pad)))
        end = min(duration, span[1] + float(rng.uniform(0, pad)))
        return round(start, 1), round(end, 1)

    def _looks(
        self,
        row: ManifestRow,
        spans: list[Span],
        subject: str,
        duration: float,
        rng: np.random.Generator,
        match: tuple[str, object] | None = None,
    ) -> list[tuple[str, str, int]]:
        if row.task == "counting":
            looks = []
            for span in spans[:3]:
                s, e = self._window(span, duration, rng)
                looks.append((f"Looking at {s:.0f}-{e:.0f}s.", tool_call("zoom", start=s, end=e, num_frames=2), 2))
            return looks
        s, e = self._window(spans[0], duration, rng)
        if row.task == "direction" or rng.random() < self.config.p_dense:
            fps = float(rng.choice([2.0, 3.0]))
            n = min(32, math.ceil((e - s) * fps))
            return [(f"Following the motion of {subject}.", tool_call("dense_sample", start=s, end=e, fps=fps), n)]
        n = int(rng.choice(self.config.zoom_frames))
        if match is not None:
            name, hit = match
            thought = (
                f"Clip {name} ({hit.start_seconds:.1f}-{hit.end_seconds:.1f}s) shows {subject}; "
                f"looking closer at {s:.0f}-{e:.0f}s."
            )
        else:
            thought = f"{subject[0].upper()}{subject[1:]} should be around {s:.0f}-{e:.0f}s; looking closer."
        return [(thought, tool_call("zoom", start=s, end=e, num_frames=n), n)]

    def _fit(self, plan: list[tuple[str, str, int]]) -> list[tuple[str, str]]:
        """Drop detours until the plan leaves budget for the answer turn (the agent would force it otherwise)."""
        max_calls = max(0, self.agent.max_steps - 2)
        while plan and (
            len(plan) > max_calls or (self.agent.max_frames and sum(f for *_, f in plan) >= self.agent.max_frames)
        ):
            detour = next((i for i, (t, *_) in enumerate(plan) if t.startswith("Checking")), None)
            plan.pop(detour if detour is not None else 0)
        return [(t, call) for t, call, _ in plan]

    def _say(self, thought: str, rng: np.random.Generator) -> str:
        return thought + "\n" if rng.random() < self.config.p_thought else ""

    @staticmethod
    def _answer(
        row: ManifestRow, cite: list[str | Span], handles: dict[str, Span] | None = None, by_letter: bool = False
    ) -> str:
        """The final answer citing ``cite``: evidence spans in seconds, or clip handles. With options,
        the gold option's text, which picks it (no letter: agent/answer.py says why), or with
        ``by_letter`` its letter, as a retrieve result's line wrote it; for time-span options ("When
        did ...?"), the handle of the cited clip when that clip picks the gold option."""
        gold = row.answer.strip().upper()[:1]
        text = row.options[LETTERS.index(gold)] if row.options else row.answer
        if by_letter:
            text = gold
        first = cite[0] if cite else None
        if row.options and isinstance(first, str) and chosen_letter(None, first, row.options, handles) == gold:
            text = first
        return format_answer(Answer(text=text), cite)
