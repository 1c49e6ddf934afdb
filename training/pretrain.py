"""Pretraining the controller to read and to see, on data the synthetic world makes in any amount.

A controller built from random init (evals/synthetic/tiny_controller.py) learns from a few hundred
oracle episodes only what those episodes show: it does not learn to *read* (copy the question's
subject into a retrieve query, a clip's handle or times from a tool result into a zoom call and
into the answer's evidence) nor to *see* (tell a red star from a blue circle). Real VLMs bring
both from pretraining; this stage gives the small controller a little of each, mixed:

- reading episodes, text only, in the agent's chat and tool-call format (its system prompt, the
  tool schemas, ``<tool_call>`` and ``<answer>``), drawn at random: a question about a subject; a
  retrieve call whose query copies it; the retrieve result listing handles ``c1``..``ck`` with
  their spans; a thought naming one clip by span or rank and a zoom on that clip's handle (or its
  times); the zoom's result; a thought naming the answer and the answer JSON citing the handle
  (or the span). Tool results come from the real toolbox (over a stand-in memory that lists the
  drawn clips), images dropped. An episode is cut after the turn its family trains (search, look
  or cite); loss on every assistant turn, as in SFT. Half of the training episodes (``p_bare``)
  leave out the system prompt and tool block: from random init, attention finds the token to copy
  in a 100-token context long before it does in a 1,100-token one (with none left out, copying had
  not started after 300 steps; with half, it had by 250-400), and held-out episodes keep the full
  prompt, so the scores are the agent's format.
- captioned frames: a frame drawn straight from a world event log (no video is encoded or
  decoded) in a user turn -> the world's caption of it (evals.synthetic.captions). With
  ``caption_first_steps`` the run starts with captions only: seeing a sprite's colour takes tens
  of thousands of captioned frames, and a caption step costs a fraction of a reading step. Once
  reading starts the language model may train at a higher rate (``read_learning_rate``) than
  seeing takes, while the vision tower keeps its own.
- grounded episodes: a real world question (evals.synthetic.questions) about a world log, written
  by the SFT oracle (training/oracle.py, retrieved-clip mode) and run on the real toolbox over a
  stand-in memory whose frames are rendered from the log: the retrieve result's thumbnails show
  which listed clip holds the subject (the others are other moments of the video), the zoom's
  frames show what answers the question, and the answer names it with its option's text. Reading
  episodes that do not describe answer with a random option; these teach choosing by what was seen.

Held-out scores, before and after: *teacher-forced argmax* over the tokens of each copied span
(query, handle, times, evidence), of the colour, shape and card word of a caption, and of a
grounded episode's picked clip (where the thought names it), description and answer words, and, when
the oracle describes, of the colour word in the description of colour episodes (``seen``: the zoom's
frames read inside an episode, which a lone frame's caption does not show). A span
counts when each of its tokens is the model's argmax given the true text before it, which is
exactly when greedy decoding from the span's start writes it. Held-out reading episodes ask about
colour+shape subjects never trained on (with fresh times and handles); held-out frames come from
the world's val split.

Why a plain PyTorch loop rather than TRL's SFTTrainer: examples are drawn fresh every step (there
is no dataset to hold), and the ~1,000 tokens of system prompt and tool block are the same in
every reading episode, so their keys and values are computed once per batch and shared by its
examples (same loss and gradients, several times less compute on CPU).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import torch

from foveate.agent.prompts import SYSTEM_PROMPT, question_text
from foveate.evals.metrics import overlaps
from foveate.evals.synthetic.events import COLOURS, DIRECTIONS, RARE_SHAPES, SHAPES, SPLIT_SEEDS, SPLIT_SIZE, WORDS
from foveate.memory.blocks import image_block, text_block
from foveate.memory.errors import FoveateError
from foveate.memory.overview import format_time
from foveate.memory.video_memory import ClipHit
from foveate.training.config import CaptionTasks, GroundTasks, PretrainRunConfig, ReadTasks
from foveate.training.oracle import OracleConfig, tool_call
from foveate.training.prefix import Scored, forward_labelled
from foveate.training.schedule import warmup_cosine

logger = logging.getLogger(__name__)

HOLDOUT_SEED = 7_001  # which subjects are held out: fixed, so every run and seed scores the same strings
EVAL_SEED = 7_002  # the held-out examples themselves
CAPTION_PROMPT = "What does this frame show?"
# other wordings of a caption example (CaptionTasks.p_varied): the prompt, and a lead-in before the caption
CAPTION_PROMPTS = (
    CAPTION_PROMPT,
    "Describe the frame.",
    "What is on screen here?",
    "Caption this frame in one line: what is in it, and what is it doing?",
    "Look at the frame.",
)
CAPTION_LEADS = ("", "The frame shows ", "The frames show ", "It shows ", "In this frame I see ")
COPY_SKILLS = ("query", "handle", "times", "evidence")
FAMILIES = ("search", "look", "cite", "caption", "ground")
# rendered alike within a kind: full agent prompt, no prompt, a captioned image, episodes with images
KINDS = ("read", "read_bare", "caption", "ground", "ground_bare")
GROUND_SKILLS = ("pick", "describe", "answer")
# a described reading episode's answer: the option its description names
ANSWER_SKILLS = ("said",)
DESCRIBED = "The frames show "  # how the oracle's description of the frames starts (OracleConfig.describe)
# questions one look at one clip answers (counting and order need every event of the video)
GROUNDED_TASKS = ("needle", "direction", "grounding", "text")
SPRITE_RE = re.compile(r"^a (\w+) (\w+) (?:moving|over) ")  # a sprite's caption, with its motion or without
MOTION_RE = re.compile(r" moving (?:" + "|".join(DIRECTIONS) + r")\b")
CARD_RE = re.compile(r"^a text card reading '([A-Z]+)'")


@dataclass(frozen=True)
class Target:
    """Characters ``[start, end)`` of assistant turn ``turn`` that copy something (scored held out)."""

    skill: str
    turn: int
    start: int
    end: int


@dataclass
class Example:
    kind: str  # one of KINDS
    messages: list[dict]  # agent messages; image blocks hold PIL images
    targets: list[Target] = field(default_factory=list)
    source: str = ""  # a grounded episode's world question: "<world seed>:<question id>"


# ---- reading episodes -----------------------------------------------------------------------
def subjects(heldout_fraction: float) -> tuple[list[str], list[str]]:
    """(trained, held-out) colour+shape subjects, e.g. 'green triangle'."""
    pairs = [f"{c} {s}" for c in COLOURS for s in SHAPES + RARE_SHAPES]
    order = np.random.default_rng(HOLDOUT_SEED).permutation(len(pairs))
    n = max(1, round(heldout_fraction * len(pairs)))
    return [pairs[i] for i in sorted(order[n:])], [pairs[i] for i in sorted(order[:n])]


# (option, a direction for a sprite's motion or None for none shown) -> caption phrase
Describe = Callable[[str, "str | None"], "str | None"]


def _question(rng: np.random.Generator, subject: str) -> tuple[str, list[str], str, Describe]:
    """(question, five options, what a retrieve query copies from it, the caption phrase of what frames
    answering with an option would show, or None), in the world's question styles."""
    shape = subject.split()[1]
    family = int(rng.integers(5))
    nothing: Describe = lambda option, direction: None  # noqa: E731
    if family == 0:
        options = [*DIRECTIONS, "it did not move"]
        return (
            f"In which direction did the {subject} move?",
            options,
            subject,
            lambda option, direction: f"a {subject} moving {option}" if option in DIRECTIONS else None,
        )
    if family == 1:
        starts = sorted(rng.choice(600, 5, replace=False))
        options = [f"{format_time(s)}-{format_time(s + 6)}" for s in starts]
        return f"When did the {subject} appear?", options, subject, nothing
    if family == 2:
        low = int(rng.integers(0, 5))
        return f"How many times did a {subject} appear?", [str(n) for n in range(low, low + 5)], subject, nothing
    if family == 3:
        words = [WORDS[i].upper() for i in rng.choice(len(WORDS), 5, replace=False)]
        question = f"What word appeared on the first text card after the {subject}?"
        return question, words, subject, lambda option, direction: f"a text card reading '{option}'"
    colours = [list(COLOURS)[i] for i in rng.choice(len(COLOURS), 5, replace=False)]
    return (
        f"What colour was the {shape}?",
        colours,
        shape,
        lambda option, direction: f"a {option} {shape}" + (f" moving {direction}" if direction else ""),
    )


ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")


class ListedClips:
    """A stand-in for a VideoMemory in text-only episodes: ``search`` returns the hits it was handed,
    frames are blank and no motion is measured. The real toolbox runs over it, so tool results are
    the tools' own text (handles, spans, timestamps, frame budget); their images are then dropped."""

    has_clip_index = True
    has_transcript = False

    def __init__(self, duration_seconds: float) -> None:
        self.duration_seconds = duration_seconds
        self.hits: list[ClipHit] = []
        self.by_query: dict[str, list[ClipHit]] = {}  # hits of a query of its own (a list query's items)
        self.motion: dict | None = None  # what motion_in reports, the episode's choice

    def search(self, query: str, k: int = 5) -> list[ClipHit]:
        return self.by_query.get(query, self.hits)[:k]

    def clip_thumbnail(self, clip_id: int) -> np.ndarray:
        return np.zeros((2, 2, 3), np.uint8)

    def frames_at(self, times_seconds, max_side: int = 448) -> np.ndarray:
        return np.zeros((len(times_seconds), 2, 2, 3), np.uint8)

    def frames_window(self, start_seconds: float, end_seconds: float, fps: float, max_side: int = 224):
        times = np.arange(start_seconds, end_seconds, 1.0 / fps, dtype=np.float64)  # as memory.frames does
        return times, self.frames_at(times)

    def motion_in(self, start_seconds: float, end_seconds: float) -> dict | None:
        return self.motion


class ReadEpisode:
    """One reading episode in the agent's messages, cut after the turn its stage trains, and the spans
    its assistant turns copy."""

    def __init__(self, rng: np.random.Generator, tasks: ReadTasks, bare: bool = False) -> None:
        self.rng, self.tasks = rng, tasks
        self.kind = "read_bare" if bare else "read"
        self.messages: list[dict] = [] if bare else [{"role": "system", "content": [text_block(SYSTEM_PROMPT)]}]
        self.targets: list[Target] = []
        self.turns = 0
        self.clip_seconds = float(rng.choice([2.0, 4.0, 5.0, 8.0]))
        self.memory = ListedClips(float(rng.integers(60, 1800)))
        # What a dense_sample of this episode reports as the objects' motion; the answer, when it was shown.
        self.moving = str(rng.choice(DIRECTIONS))
        camera = f"pan {rng.choice(DIRECTIONS)}" if rng.random() < 0.5 else "still"
        self.memory.motion = {"source": "motion_vectors", "camera": camera, "objects": f"moving {self.moving}"}
        self.motion_shown = False
        self.max_frames = int(rng.choice([48, 64]))  # never runs out: <= 42 spent
        self.seen: list[ClipHit] = []

    def build(self, subject: str, stage: str, pool: list[str] | None = None) -> Example:
        """Ask about ``subject``; search and look (twice when a first look is a detour); answer.
        ``stage`` (search, look or cite) is the last turn kept. With ``pool`` (subjects), a ``p_order``
        share of episodes asks instead which of five of them appeared first or last."""
        if self.tasks.p_order and pool and self.rng.random() < self.tasks.p_order:
            return self._build_order(pool, stage)
        question, options, query, describe = _question(self.rng, subject)
        self._open_toolbox(question)
        self.asks_motion = any(option in DIRECTIONS for option in options)  # a direction question
        options = [options[i] for i in self.rng.permutation(len(options))]
        text = question_text(question, options, self.memory.duration_seconds)
        self.messages.append({"role": "user", "content": [text_block(text)]})
        rounds = 2 if self.rng.random() < self.tasks.p_second_search else 1
        cited: str | list[float] = ""
        for r in range(rounds):
            # The oracle's query forms (training/oracle.py); the subject inside is what is copied and scored.
            q = str(self.rng.choice([f"a {query}", f"the {query}", f"a {query} crossing the screen"]))
            k = int(self.rng.integers(1, self.tasks.max_clips + 1))
            thought = (
                "Not there; searching again.\n"
                if r
                else (f"Let me find the {query}.\n" if self.rng.random() < 0.5 else "")
            )
            self._say(thought + tool_call("retrieve", query=q, k=k), [("query", query, '"query": ')])
            if stage == "search":
                return Example(self.kind, self.messages, self.targets)
            self.memory.hits = self._hits(k)
            self._tool("retrieve", {"query": q, "k": k})
            rank = int(self.rng.integers(k))
            final = r == rounds - 1
            named = query if self.tasks.thought_names_query else subject
            cited = self._look(self.memory.hits[rank], rank, named, final, last=final and stage == "look")
        if stage == "look":
            return Example(self.kind, self.messages, self.targets)
        self._answer(options, describe, cited)
        return Example(self.kind, self.messages, self.targets)

    def _build_order(self, pool: list[str], stage: str) -> Example:
        """Which of five subjects appeared first (last)? One retrieve of all five by letter (``k=1``): its
        result lists their clips in time order, and the answer is the letter on the first (last) line,
        citing its clip. ``stage``: search keeps the retrieve call only; look and cite keep the answer too."""
        from foveate.agent.answer import LETTERS, Answer, format_answer
        from foveate.tools.retrieve import in_time_order

        options = [f"the {pool[i]}" for i in self.rng.choice(len(pool), 5, replace=False)]
        which = "first" if self.rng.random() < 0.5 else "last"
        question = f"Which appeared {which}: {', '.join(options[:4])} or {options[4]}?"
        options = [options[i] for i in self.rng.permutation(5)]
        letters = list(LETTERS[: len(options)])
        self._open_toolbox(question, options)
        self.messages.append(
            {"role": "user", "content": [text_block(question_text(question, options, self.memory.duration_seconds))]}
        )
        thought = "Listing when each of them appeared.\n" if self.rng.random() < 0.5 else ""
        self._say(thought + tool_call("retrieve", query=letters, k=1), [("queries", x, '"query": ') for x in letters])
        if stage == "search":
            return Example(self.kind, self.messages, self.targets)
        n_clips = int(self.memory.duration_seconds // self.clip_seconds)
        for option, clip_id in zip(options, self.rng.choice(n_clips, 5, replace=False)):
            start = float(clip_id) * self.clip_seconds
            score = round(float(self.rng.uniform(0.15, 0.45)), 3)
            hit = ClipHit(
                clip_id=int(clip_id), start_seconds=start, end_seconds=start + self.clip_seconds, score=score
            )
            self.memory.by_query[option] = [hit]
        self._tool("retrieve", {"query": letters, "k": 1})
        picked, hit = in_time_order(self.memory.search, options, 1)[0 if which == "first" else -1]
        handle = {span: h for h, span in self.toolbox.handles.items()}[(hit.start_seconds, hit.end_seconds)]
        letter = letters[options.index(picked)]
        answer = format_answer(Answer(text=letter), [handle])
        self._say(answer, [("order", letter, '"answer": "'), ("evidence", handle, '"evidence": ')])
        return Example(self.kind, self.messages, self.targets)

    def _open_toolbox(self, question: str, options: list[str] | None = None) -> None:
        """The real toolbox over this episode's listed clips, for ``question`` (its results restate it)."""
        from foveate.tools.toolbox import VideoToolbox

        self.toolbox = VideoToolbox(self.memory, max_frames=self.max_frames, options=options, question=question)

    def _hits(self, k: int) -> list[ClipHit]:
        """``k`` clips, some of them (on a second search) clips an earlier search returned."""
        n_clips = int(self.memory.duration_seconds // self.clip_seconds)
        hits: list[ClipHit] = []
        for score in sorted(self.rng.uniform(0.15, 0.45, k), reverse=True):
            taken = {h.clip_id for h in self.seen + hits}
            old = [h for h in self.seen if h.clip_id not in {x.clip_id for x in hits}]
            free = [c for c in range(n_clips) if c not in taken]
            if old and (not free or self.rng.random() < 0.3):  # a short video's clips may all have been listed
                hit = old[int(self.rng.integers(len(old)))]
            else:
                clip_id = int(self.rng.choice(free))
                start = clip_id * self.clip_seconds
                hit = ClipHit(clip_id=clip_id, start_seconds=start, end_seconds=start + self.clip_seconds, score=0.0)
            hits.append(hit.model_copy(update={"score": round(float(score), 3)}))
        self.seen += [h for h in hits if h.clip_id not in {s.clip_id for s in self.seen}]
        return hits

    def _say(self, text: str, copies: list[tuple[str, str, str]]) -> None:
        """An assistant turn; ``copies`` are (skill, copied text, the key it follows)."""
        for skill, value, after in copies:
            start = text.index(value, text.index(after) + len(after))
            self.targets.append(Target(skill, self.turns, start, start + len(value)))
        self.messages.append({"role": "assistant", "content": [text_block(text)]})
        self.turns += 1

    def _tool(self, name: str, arguments: dict) -> None:
        """Run the call on the real toolbox; the observation keeps its text blocks (images dropped)."""
        from foveate.tools.toolbox import dispatch

        result = dispatch(self.toolbox, name, arguments)
        if result.error is not None:
            raise FoveateError(f"reading episode: {name}({arguments}) failed: {result.error}")
        blocks = [b for b in result.blocks if b["type"] == "text"]
        self.messages.append({"role": "tool", "name": name, "content": blocks})

    def _look(self, hit: ClipHit, rank: int, subject: str, final: bool, last: bool) -> str | list[float]:
        """Name a clip in a thought, look at it by handle (or times); returns what the answer cites.
        ``last``: the episode ends with this call (no tool result)."""
        s, e = hit.start_seconds, hit.end_seconds
        handle = {span: h for h, span in self.toolbox.handles.items()}[(s, e)]
        by_rank = self.rng.random() < self.tasks.p_by_rank
        named = f"the {ORDINALS[rank]} clip" if by_rank else f"the clip at {s:.1f}-{e:.1f}s"
        thought = f"{named[0].upper()}{named[1:]} shows the {subject}.\n" if final else f"Checking {named} first.\n"
        n = int(self.rng.choice([2, 3, 4]))
        if self.rng.random() < self.tasks.p_times:
            name, arguments, cited = "zoom", {"start": s, "end": e, "num_frames": n}, [s, e]
            copies = [("times", json.dumps(s), '"start": '), ("times", json.dumps(e), '"end": ')]
        else:
            dense = self.rng.random() < (0.8 if self.asks_motion else 0.2)  # motion is what dense_sample shows
            name, cited = ("dense_sample", handle) if dense else ("zoom", handle)
            arguments = {"clip": handle, "fps": 2.0} if dense else {"clip": handle, "num_frames": n}
            copies = [("handle", handle, '"clip": ')]
        self._say(thought + tool_call(name, **arguments), copies)
        if not last:
            self._tool(name, arguments)
            self.motion_shown = name == "dense_sample"  # the last look's result is what the answer reads
        return cited

    def _answer(self, options: list[str], describe: Describe, cited: str | list[float]) -> None:
        """The oracle's last turn: for questions one event answers, what the frames show in caption words
        (text only here: the frames were dropped), then the option it names, as written, and the
        evidence; for "when" questions, the clip looked at (its handle, or its times); otherwise the answer
        alone, with a random option. After a dense_sample, the motion described is the one its result
        reported, and a direction question's answer is that direction; without one the description names a
        random direction, or (``describe_unseen_motion`` off) none, and a direction question is not described."""
        from foveate.agent.answer import Answer, format_answer, time_span

        described = [i for i, option in enumerate(options) if describe(option, "left") is not None]
        text = options[int(self.rng.choice(described)) if described else int(self.rng.integers(len(options)))]
        moving: str | None = self.moving if self.motion_shown else str(self.rng.choice(DIRECTIONS))
        if not (self.motion_shown or self.tasks.describe_unseen_motion):
            moving = None  # nothing in the episode shows the motion: the description does not name one
            if self.asks_motion:
                described = []  # nor guesses the direction a direction question asks for
        if self.motion_shown and self.moving in options:  # "In which direction ...?": read off the motion line
            text = self.moving
        when = all(time_span(o) for o in options)  # "When did ...?": the answer names the clip looked at
        if when:
            text = cited if isinstance(cited, str) else f"{cited[0]:.1f}-{cited[1]:.1f}s"
        answer = format_answer(Answer(text=text), [cited if isinstance(cited, str) else tuple(cited)])
        value = cited if isinstance(cited, str) else f"{json.dumps(cited[0])}, {json.dumps(cited[1])}"
        copies = [("evidence", value, '"evidence": ')]
        if when:
            copies = [("when", text, '"answer": "'), *copies]
        if described:
            answer = f"{DESCRIBED}{describe(text, moving)}.\n{answer}"
            copies = [("said", text, '"answer": "'), *copies]
            if self.motion_shown and f" moving {self.moving}." in answer:
                copies = [("motion", self.moving, " moving "), *copies]
        self._say(answer, copies)


# ---- captioned frames -----------------------------------------------------------------------
@lru_cache(maxsize=256)
def _world_frames(seed: int, minutes: float, width: int, height: int):
    """A world log and its captioned frame times (evals.synthetic.captions.frame_captions)."""
    from foveate.evals.synthetic.captions import frame_captions
    from foveate.evals.synthetic.events import make_event_log

    log = make_event_log(seed, minutes, 10, (width, height))
    return log, list(frame_captions(log, seed=seed))


def caption_example(rng: np.random.Generator, split: str, tasks: CaptionTasks) -> Example:
    """A frame of a random ``split`` world log -> its caption; targets: colour and shape, or the card's word.

    A share ``p_varied`` of them is worded otherwise (:data:`CAPTION_PROMPTS`, the prompt before or after
    the frame, a lead-in from :data:`CAPTION_LEADS`), so that the caption's words sit at varying distances
    from the frame's tokens."""
    from foveate.evals.synthetic.render import render_frame

    log, pairs = _world_frames(
        SPLIT_SEEDS[split] + int(rng.integers(SPLIT_SIZE)), tasks.minutes, tasks.width, tasks.height
    )
    t, caption = pairs[int(rng.integers(len(pairs)))]
    content, lead = [image_block(render_frame(log, t)), text_block(CAPTION_PROMPT)], ""
    if tasks.p_varied and rng.random() < tasks.p_varied:  # no draw at 0: earlier runs' data stay the same
        prompt = CAPTION_PROMPTS[int(rng.integers(len(CAPTION_PROMPTS)))]
        lead = CAPTION_LEADS[int(rng.integers(len(CAPTION_LEADS)))]
        content = [content[0], text_block(prompt)] if rng.random() < 0.5 else [text_block(prompt), content[0]]
        if tasks.varied_without_motion:
            caption = MOTION_RE.sub("", caption)  # every sprite the caption lists
    return captioned(content, caption, lead)


def captioned(content: list[dict], caption: str, lead: str = "") -> Example:
    """A caption example: the user's ``content`` (a frame and a prompt) -> ``lead + caption``. Its targets
    are the caption's colour and shape, or the text card's word, wherever ``lead`` puts them."""
    messages = [{"role": "user", "content": content}, {"role": "assistant", "content": [text_block(lead + caption)]}]
    targets, n = [], len(lead)
    if (m := SPRITE_RE.match(caption)) and m[1] in COLOURS:
        targets = [Target("colour", 0, n + m.start(1), n + m.end(1)), Target("shape", 0, n + m.start(2), n + m.end(2))]
    elif m := CARD_RE.match(caption):
        targets = [Target("word", 0, n + m.start(1), n + m.end(1))]
    return Example("caption", messages, targets)


# ---- grounded episodes ---------------------------------------------------------------------------
@lru_cache(maxsize=256)
def _world_questions(seed: int, minutes: float, width: int, height: int):
    """A world log and its questions that one look answers (the world's own question builder)."""
    from foveate.evals.synthetic.questions import make_questions

    log, _ = _world_frames(seed, minutes, width, height)
    rows = make_questions(log, f"world-{seed}.mp4", f"w{seed}", 64, seed)
    return log, [r for r in rows if r.task in GROUNDED_TASKS and r.options]


def _shrink(frame: np.ndarray, max_side: int) -> np.ndarray:
    """``frame`` with its longest side at most ``max_side``, scaled by libswscale as decoded frames are."""
    import av

    from foveate.memory.frames import target_size

    h, w = frame.shape[:2]
    if max(h, w) <= max_side:
        return frame
    size = target_size(w, h, max_side)
    return av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(*size).to_ndarray(format="rgb24")


class WorldClips(ListedClips):
    """:class:`ListedClips` over a world log: its frames are rendered from the log, and its first search
    lists ``k`` clips, one of them (at a random rank, the top one half the time) the clip that holds
    ``target``, the rest clips of other moments."""

    def __init__(self, log, tasks: GroundTasks, target: tuple[float, float], rng: np.random.Generator) -> None:
        super().__init__(log.duration_seconds)
        self.log, self.tasks, self.target, self.rng = log, tasks, target, rng
        self.spans: dict[int, tuple[float, float]] = {}

    def _span(self, clip_id: int) -> tuple[float, float]:
        start = clip_id * self.tasks.clip_seconds
        return start, min(self.duration_seconds, start + self.tasks.clip_seconds)

    def search(self, query: str, k: int = 5) -> list[ClipHit]:
        if not self.hits:
            n_clips = math.ceil(self.duration_seconds / self.tasks.clip_seconds)
            middle = (self.target[0] + self.target[1]) / 2
            shown = min(int(middle // self.tasks.clip_seconds), n_clips - 1)
            others = [c for c in range(n_clips) if not overlaps(self._span(c), self.target)]
            ids = [int(c) for c in self.rng.choice(others, min(k - 1, len(others)), replace=False)]
            ids.insert(0 if self.rng.random() < 0.5 else int(self.rng.integers(len(ids) + 1)), shown)
            scores = sorted(self.rng.uniform(0.15, 0.45, len(ids)), reverse=True)
            for c, score in zip(ids, scores):
                s, e = self._span(c)
                self.hits.append(ClipHit(clip_id=c, start_seconds=s, end_seconds=e, score=round(float(score), 3)))
        return self.hits[:k]

    def clip_thumbnail(self, clip_id: int) -> np.ndarray:
        from foveate.evals.synthetic.render import render_frame

        s, e = self._span(clip_id)
        return _shrink(render_frame(self.log, (s + e) / 2), self.tasks.thumbnail_max_side)

    def frames_at(self, times_seconds, max_side: int = 448) -> np.ndarray:
        from foveate.evals.synthetic.render import render_frame

        last = self.duration_seconds - 1e-3
        return np.stack([_shrink(render_frame(self.log, min(float(t), last)), max_side) for t in times_seconds])

    def motion_in(self, start_seconds: float, end_seconds: float) -> dict:
        """The motion a dense_sample reports, from the log: the camera's pan over the window and the
        direction of the sprite on screen longest in it, as ``VideoMemory.motion_in`` words them."""
        window = (start_seconds, end_seconds)
        scene = self.log.scene_at((start_seconds + end_seconds) / 2)
        on_screen = [
            (min(end_seconds, s.end_seconds) - max(start_seconds, s.start_seconds), s)
            for s in self.log.sprites
            if overlaps(window, (s.start_seconds, s.end_seconds))
        ]
        sprite = max(on_screen, key=lambda o: o[0])[1] if on_screen else None
        return {
            "source": "motion_vectors",
            "camera": f"pan {scene.pan}" if scene.pan else "still",
            "objects": f"moving {sprite.direction}" if sprite is not None else "still",
        }


def grounded_example(
    rng: np.random.Generator, split: str, captions: CaptionTasks, tasks: GroundTasks, bare: bool = False
) -> Example:
    """A world question answered by the oracle in the agent's format, its tool results with the frames
    rendered from the world log; targets: the clip it picks, its description and the answer's words."""
    from foveate.agent.config import AgentConfig
    from foveate.agent.toolcalls import parse_tool_calls
    from foveate.tools.toolbox import VideoToolbox, dispatch
    from foveate.training.oracle import OraclePolicy, focus_span

    agent = AgentConfig(max_steps=tasks.max_steps, max_frames=tasks.max_frames)
    oracle = OraclePolicy(OracleConfig(**{**tasks.oracle, "look_at": "retrieved"}), agent)
    outputs = None
    for _ in range(100):  # a short log may have no such question; a look may not fit the frame budget
        seed = SPLIT_SEEDS[split] + int(rng.integers(SPLIT_SIZE))
        log, rows = _world_questions(seed, captions.minutes, captions.width, captions.height)
        if not rows:
            continue
        row = rows[int(rng.integers(len(rows)))]
        target = tuple(row.evidence[-1]) if row.task == "text" else focus_span(row, log)  # the answer is read off
        memory = WorldClips(log, tasks, target, rng)
        outputs = oracle.outputs(row, log, log.duration_seconds, rng, search=memory.search)
        if outputs is not None:
            break
    if outputs is None:
        raise FoveateError(
            f"no grounded episode fits max_frames={tasks.max_frames} (retrieve's thumbnails, then a look) "
            f"in 100 draws of {captions.minutes}-minute world logs"
        )
    toolbox = VideoToolbox(memory, max_frames=tasks.max_frames, options=row.options, question=row.question)
    messages: list[dict] = [] if bare else [{"role": "system", "content": [text_block(SYSTEM_PROMPT)]}]
    messages.append(
        {"role": "user", "content": [text_block(question_text(row.question, row.options, log.duration_seconds))]}
    )
    targets: list[Target] = []
    for turn, text in enumerate(outputs):
        messages.append({"role": "assistant", "content": [text_block(text)]})
        if turn == len(outputs) - 1:
            break
        (call,) = parse_tool_calls(text)
        if call.name in ("zoom", "dense_sample") and "clip" in call.arguments:
            # The clip is chosen where its handle is first written: in the thought naming it ("Clip c2
            # (8.0-12.0s) shows ..."), when there is one; the call then only copies it.
            handle = call.arguments["clip"]
            named = text.find(f"Clip {handle} (")
            start = named + len("Clip ") if named >= 0 else text.index('"clip": ') + len('"clip": "')
            targets.append(Target("pick", turn, start, start + len(handle)))
        result = dispatch(toolbox, call.name, call.arguments)
        if result.error is not None:
            raise FoveateError(f"grounded episode: {call.name}({call.arguments}) failed: {result.error}")
        messages.append({"role": "tool", "name": call.name, "content": result.blocks})
    final = outputs[-1]
    payload = json.loads(final[final.index("<answer>") + 8 : final.rindex("}") + 1])
    if final.startswith(DESCRIBED):  # the oracle's caption of what the frames show
        targets.append(Target("describe", len(outputs) - 1, len(DESCRIBED), final.index(".\n")))
    start = final.index('"answer": "') + len('"answer": "')
    targets.append(Target("answer", len(outputs) - 1, start, start + len(payload["answer"])))
    return Example("ground_bare" if bare else "ground", messages, targets, f"{seed}:{row.id}")


def colour_episodes(config: PretrainRunConfig, n: int, seed: int, answer: bool = True) -> list[Example]:
    """``n`` grounded val-split episodes of colour questions ("What colour was the hexagon?": one look
    answers them), each scored on its description's colour word (skill ``seen``: read off the zoom's
    frames inside the episode) and, with ``answer``, on its answer's (skill ``answer``: the copy of that
    word into the answer JSON, teacher-forced after the true description)."""
    rng = np.random.default_rng(seed)
    episodes: list[Example] = []
    for _ in range(200 * n):
        ex = grounded_example(rng, "val", config.caption, config.ground)
        question = ex.messages[1]["content"][0]["text"]  # after the system prompt
        final = ex.messages[-1]["content"][0]["text"]
        if "What colour was" not in question or not final.startswith(DESCRIBED + "a "):
            continue
        start = len(DESCRIBED + "a ")
        turn = sum(m["role"] == "assistant" for m in ex.messages) - 1
        said = [t for t in ex.targets if t.skill == "answer"] if answer else []
        ex.targets = [Target("seen", turn, start, final.index(" ", start)), *said]
        episodes.append(ex)
        if len(episodes) == n:
            return episodes
    raise FoveateError(f"only {len(episodes)} colour episodes in {200 * n} draws")


class TaskSampler:
    """Draws training examples in the configured mix, and the fixed held-out set (the same families,
    ``eval_examples`` of each, about held-out subjects and val-split frames)."""

    def __init__(self, config: PretrainRunConfig) -> None:
        self.config = config
        self.trained, self.heldout_subjects = subjects(config.read.heldout_fraction)
        weights = config.mix.weights
        self.families = [f for f in FAMILIES if weights[f] > 0]
        p = np.array([weights[f] for f in self.families])
        self.p = p / p.sum()

    def draw(self, rng: np.random.Generator, n: int, captions_only: bool = False) -> list[Example]:
        families = ["caption"] * n if captions_only else rng.choice(self.families, n, p=self.p)
        return [
            self._one(rng, str(f), self.trained, "train", rng.random() < self.config.read.p_bare) for f in families
        ]

    def heldout(self) -> list[Example]:
        rng = np.random.default_rng(EVAL_SEED)
        n = self.config.eval_examples
        drawn = [self._one(rng, f, self.heldout_subjects, "val") for f in self.families for _ in range(n)]
        # is a zoom read in an episode (captions do not tell)
        if "ground" in self.families and OracleConfig(**self.config.ground.oracle).describe:
            drawn += colour_episodes(self.config, n, EVAL_SEED + 1, answer=False)
        return drawn

    def _one(self, rng: np.random.Generator, family: str, pool: list[str], split: str, bare: bool = False) -> Example:
        if family == "caption":
            return caption_example(rng, split, self.config.caption)
        if family == "ground":
            return grounded_example(rng, split, self.config.caption, self.config.ground, bare)
        return ReadEpisode(rng, self.config.read, bare).build(pool[int(rng.integers(len(pool)))], family, pool)


# ---- rendering and the forward pass ------------------------------------------------------------
@dataclass
class Rendered:
    kind: str
    inputs: dict[str, torch.Tensor]  # the collator's per-token fields (no batch dimension) and pixel inputs
    targets: list[tuple[str, torch.Tensor]] = field(default_factory=list)  # (skill, token positions)


class Renderer:
    """Examples -> model inputs with labels on assistant tokens, rendered as training/collator.py renders
    SFT examples: episodes with the tool schemas (bare ones without), captions (a user turn with one
    image) without."""

    def __init__(self, processor) -> None:
        from foveate.tools.toolbox import tool_schemas
        from foveate.training.collator import AgentChatCollator

        self.processor, self.tokenizer = processor, processor.tokenizer
        self.pad_id = processor.tokenizer.pad_token_id
        self.collators = {
            "read": AgentChatCollator(processor, tool_schemas()),
            "read_bare": AgentChatCollator(processor, []),
            "caption": AgentChatCollator(processor, []),
        }
        self.collators |= {"ground": self.collators["read"], "ground_bare": self.collators["read_bare"]}

    def __call__(self, example: Example, score: bool = False) -> Rendered:
        inputs = self.collators[example.kind].render(example.messages)
        if not score:
            return Rendered(example.kind, inputs)
        positions = (inputs["labels"] != -100).nonzero().flatten()
        runs = torch.tensor_split(positions, (torch.diff(positions) > 1).nonzero().flatten() + 1)
        texts = [m["content"][0]["text"] for m in example.messages if m["role"] == "assistant"]
        if len(runs) != len(texts):
            raise FoveateError(f"{len(texts)} assistant turns rendered as {len(runs)} labelled runs")
        targets = []
        for t in example.targets:
            pieces = [self.tokenizer.decode([int(i)]) for i in inputs["input_ids"][runs[t.turn]]]
            if not "".join(pieces).startswith(texts[t.turn]):
                raise FoveateError(f"assistant turn {t.turn} does not decode to its text: {''.join(pieces)!r}")
            ends = np.cumsum([len(p) for p in pieces])
            inside = [i for i, end in enumerate(ends) if end > t.start and end - len(pieces[i]) < t.end]
            targets.append((t.skill, runs[t.turn][inside]))
        return Rendered(example.kind, inputs, targets)


def on_device(item: Rendered, device: torch.device) -> Rendered:
    """``item`` with its tensors on ``device`` (itself on the CPU, where they already are)."""
    if device.type == "cpu":
        return item
    inputs = {k: v.to(device, non_blocking=True) for k, v in item.inputs.items()}
    return Rendered(item.kind, inputs, [(skill, positions.to(device)) for skill, positions in item.targets])


def _forward(model, items: list[Rendered], pad_id: int) -> Scored:
    """The group's logits at the positions whose next token is labelled (training/prefix.py)."""
    return forward_labelled(model, [it.inputs for it in items], pad_id)


def _group_loss(model, group: list[Rendered], pad_id: int) -> tuple[torch.Tensor, Scored]:
    """(mean token loss on the labels, the logits it came from) of items of one kind (see :func:`_forward`)."""
    out = _forward(model, group, pad_id)
    return torch.nn.functional.cross_entropy(out.logits.float(), out.next_tokens()), out


def batch_loss(model, items: list[Rendered], pad_id: int) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean token loss of each kind in the batch, weighted by the kind's share of the examples."""
    total, parts = torch.zeros(()), {}
    for kind in KINDS:
        group = [it for it in items if it.kind == kind]
        if group:
            loss = _group_loss(model, group, pad_id)[0]
            parts[kind] = float(loss.detach())
            total = total + loss * len(group) / len(items)
    return total, parts


# ---- held-out scores ----------------------------------------------------------------------------
@torch.no_grad()
def evaluate(model, items: list[Rendered], batch_size: int, pad_id: int) -> dict[str, float]:
    """Held-out loss per kind and exact-match rates per skill (teacher-forced argmax over each span's tokens)."""
    was_training = model.training
    model.eval()
    hits: dict[str, list[bool]] = {}
    losses: dict[str, list[float]] = {}
    both: list[bool] = []  # captions naming a sprite: colour and shape both right
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        for kind in KINDS:
            group = [it for it in chunk if it.kind == kind]
            if not group:
                continue
            loss, out = _group_loss(model, group, pad_id)
            losses.setdefault(kind, []).append(float(loss) * len(group))
            predicted, rows = out.logits.argmax(-1), out.rows()
            for b, it in enumerate(group):
                right = {}
                for skill, pos in it.targets:
                    before = rows[b, pos - out.offset - 1]  # each target token is labelled: its position scored
                    ok = bool((predicted[before] == out.ids[b, pos - out.offset]).all())
                    hits.setdefault(skill, []).append(ok)
                    right[skill] = ok
                if "colour" in right:
                    both.append(right["colour"] and right["shape"])
    metrics = {f"{kind}_loss": sum(v) / sum(it.kind == kind for it in items) for kind, v in losses.items()}
    copies = [ok for skill in COPY_SKILLS for ok in hits.get(skill, [])]
    if copies:
        metrics["copy_accuracy"] = float(np.mean(copies))
    if both:
        metrics["caption_accuracy"] = float(np.mean(both))
    metrics |= {skill: float(np.mean(v)) for skill, v in sorted(hits.items())}
    model.train(was_training)
    return {k: round(v, 4) for k, v in metrics.items()}


# ---- the run --------------------------------------------------------------------------------------
@dataclass
class PretrainResult:
    controller: Path
    steps: int
    losses: list[float]
    before: dict[str, float]
    after: dict[str, float]
    seconds: float

    def summary(self) -> dict:
        out = {
            "controller": str(self.controller),
            "steps": self.steps,
            "first_loss": self.losses[0] if self.losses else None,
            "last_loss": self.losses[-1] if self.losses else None,
        }
        for key in ("copy_accuracy", "caption_accuracy"):
            if key in self.after:
                out[f"{key}_before"], out[f"{key}_after"] = self.before[key], self.after[key]
        return out


def _lr_factor(config: PretrainRunConfig, step: int, raised: float = 1.0) -> float:
    """The rate's multiple of its peak at ``step``; ``raised`` multiplies it from caption_first_steps on."""
    flat = max(config.warmup_steps, config.caption_first_steps)  # the caption-only stage runs at the peak
    factor = warmup_cosine(
        step, config.warmup_steps, flat, config.steps, floor=0.1, decay=config.lr_schedule == "cosine"
    )
    return factor * raised if step >= config.caption_first_steps else factor


# ---- resuming -------------------------------------------------------------------------------------
RESUME_FILE = "resume.pt"
# fields that do not change what is trained: a run resumes with them changed
RESUME_FREE_FIELDS = {"output_dir", "checkpoint_every", "log_every"}


def _resume_key(config: PretrainRunConfig) -> dict:
    key = config.model_dump(mode="json", exclude=RESUME_FREE_FIELDS | {"draw_workers"})
    # how many workers draw does not change the batches; whether any do, does
    return key | {"drawn_per_step": True} if config.draw_workers else key


def load_resume(path: Path, config: PretrainRunConfig) -> dict | None:
    """The training state an interrupted run of ``config`` saved at ``path``, or None when there is none."""
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("config") != _resume_key(config):
        saved, now = state.get("config") or {}, _resume_key(config)
        differ = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
        raise FoveateError(
            f"{path} holds an unfinished run of another config (it differs in {', '.join(differ)}); resume it "
            "with that config, or delete the file to start over"
        )
    return state


def _save_resume(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` whole or not at all (an interruption while saving keeps the last one)."""
    partial_path = path.with_suffix(".partial")
    torch.save(state, partial_path)
    partial_path.replace(path)


@contextmanager
def _batches(renderer: Renderer, sampler: TaskSampler, config: PretrainRunConfig, rng, start: int):
    """``(step, items, the loop's generator state after them)`` for the steps after ``start``: drawn here from
    ``rng`` in turn, or with ``draw_workers`` by worker processes, each step from its own generator (the
    state is then None: a step's generator is a function of the step)."""
    from foveate.training.prefetch import Prefetched, draw_batch

    if config.draw_workers and start < config.steps:
        with Prefetched(config, renderer.processor, start, config.draw_workers) as drawn:
            yield ((step, items, None) for step, items in drawn)
    else:
        steps = range(start + 1, config.steps + 1)
        yield ((step, draw_batch(renderer, sampler, config, step, rng), rng.bit_generator.state) for step in steps)


def _train(
    model,
    renderer: Renderer,
    sampler: TaskSampler,
    config: PretrainRunConfig,
    heldout,
    progress,
    resume: dict | None = None,
    save: Callable[[dict], None] | None = None,
):
    """The optimisation loop; returns (losses per step, held-out scores every ``eval_every`` steps).

    ``resume``: a state ``save`` was given (weights, optimizer, schedule, random generators, the step and
    the scores so far); the loop goes on from its step as if it had never stopped.
    """
    rng = np.random.default_rng([config.seed, 1])
    from foveate.training.checkpoint import VISION_RE

    device = next(model.parameters()).device

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    vision_lr = config.vision_learning_rate or config.learning_rate
    reading = (config.read_learning_rate or config.learning_rate) / config.learning_rate
    groups, factors = [], []
    for vision, lr in ((False, config.learning_rate), (True, vision_lr)):
        group = [p for n, p in named if bool(VISION_RE.search(n)) == vision]
        if group:
            groups.append({"params": group, "lr": lr})
            # the language model's rate is raised once reading starts (read_learning_rate)
            factors.append(partial(_lr_factor, config, raised=1.0 if vision else reading))
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factors)
    losses, curve, start = [], [], 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        schedule.load_state_dict(resume["schedule"])
        if resume["rng"] is not None:
            rng.bit_generator.state = resume["rng"]
        torch.set_rng_state(resume["torch_rng"])
        if resume.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(resume["cuda_rng"])
        losses, curve, start = list(resume["losses"]), list(resume["curve"]), resume["step"]
        logger.info("resumed at step %d/%d", start, config.steps)
    model.train()
    with _batches(renderer, sampler, config, rng, start) as batches:
        for step, items, rng_state in batches:
            loss, _ = batch_loss(model, [on_device(it, device) for it in items], renderer.pad_id)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            schedule.step()
            losses.append(round(float(loss.detach()), 5))
            if step % config.log_every == 0:
                logger.info("step %d/%d: loss %.4f", step, config.steps, np.mean(losses[-config.log_every :]))
            if config.eval_every and step % config.eval_every == 0 and step < config.steps:
                curve.append({"step": step, **evaluate(model, heldout, config.batch_size, renderer.pad_id)})
                logger.info("step %d held out: %s", step, curve[-1])
            if (
                save is not None
                and config.checkpoint_every
                and step % config.checkpoint_every == 0
                and step < config.steps
            ):
                save(
                    {
                        "step": step,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "schedule": schedule.state_dict(),
                        "rng": rng_state,
                        "torch_rng": torch.get_rng_state(),
                        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                        "losses": losses,
                        "curve": curve,
                    }
                )
            if progress is not None:
                progress(step, config.steps, losses[-1])
    return losses, curve


def run_pretrain(
    config: PretrainRunConfig, out: Path, progress: Callable[[int, int, float], None] | None = None
) -> PretrainResult:
    """Pretrain, score before and after, save ``out/controller`` and ``out/metrics.json``.

    ``progress(step, steps, loss)`` is called after every step. Every ``config.checkpoint_every`` steps the
    training state goes to ``out/resume.pt``; a run that finds one goes on from it (the same weights, losses
    and scores as a run never stopped) and removes it when it finishes.
    """
    from foveate.training.assets import resolve_controller
    from foveate.training.checkpoint import load_for_training, save_controller

    # config -> model
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    model, processor = load_for_training(resolve_controller(config.model.path, out), config.model)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    renderer = Renderer(processor)

    # data: held-out examples are rendered once; training examples are drawn every step
    sampler = TaskSampler(config)
    heldout = [on_device(renderer(ex, score=True), device) for ex in sampler.heldout()]
    resume_path = out / RESUME_FILE
    resume = load_resume(resume_path, config)
    earlier = resume["seconds"] if resume else 0.0  # spent before this call, by the calls it resumes
    resumed_at = [*resume["resumed_at"], resume["step"]] if resume else []

    # before, train, after; deterministic kernels where torch has them (cheap on CPU)
    restore = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        before = resume["before"] if resume else evaluate(model, heldout, config.batch_size, renderer.pad_id)
        logger.info("held out before: %s", before)

        def save(state: dict) -> None:
            seconds = earlier + time.perf_counter() - started
            kept = {"config": _resume_key(config), "before": before, "seconds": seconds, "resumed_at": resumed_at}
            _save_resume(resume_path, state | kept)

        losses, curve = _train(model, renderer, sampler, config, heldout, progress, resume, save)
        after = evaluate(model, heldout, config.batch_size, renderer.pad_id)
        logger.info("held out after: %s", after)
    finally:
        torch.use_deterministic_algorithms(restore[0], warn_only=restore[1])

    # save
    path = save_controller(model, processor, out / "controller")
    seconds = round(earlier + time.perf_counter() - started, 1)
    metrics = {
        "measure": "teacher-forced argmax: a span counts when each of its tokens is the argmax given the true text "
        "before it (what greedy decoding from the span's start writes)",
        "before": before,
        "after": after,
        "curve": curve,
        "steps": config.steps,
        "caption_first_steps": config.caption_first_steps,
        "seconds": seconds,
        "resumed_at": resumed_at,
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "heldout": {"examples": len(heldout), "subjects": sampler.heldout_subjects},
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    resume_path.unlink(missing_ok=True)
    return PretrainResult(path, config.steps, losses, before, after, seconds)
