"""The synthetic world's ground truth: a configuration, an event log schema, and its generator.

A world video is a sequence of scenes (a procedural background each, hard cuts between them,
an optional camera pan inside). Inside a scene, events happen one at a time: a coloured sprite
enters at one edge, crosses the frame in a straight line and leaves at the opposite edge, or a
text card shows one word. Some sprites repeat an earlier sprite's shape in another colour (or
its colour on another shape) so that finding "the red star" needs more than spotting a star.

Everything is drawn from ``numpy.random.default_rng(seed)``: the same seed and config give the
same log, byte for byte (:func:`dump_log`). All times are seconds; spans are half-open
``[start_seconds, end_seconds)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (235, 35, 35),
    "green": (40, 210, 60),
    "blue": (45, 80, 245),
    "yellow": (245, 225, 30),
    "magenta": (230, 40, 230),
    "cyan": (40, 225, 235),
    "white": (250, 250, 250),
}
SHAPES = ("circle", "square", "triangle", "star", "cross")
RARE_SHAPES = ("diamond", "hexagon", "ring")  # each appears at most once per video
DIRECTIONS = ("left", "right", "up", "down")
WORDS = (
    "apple",
    "river",
    "candle",
    "orbit",
    "maple",
    "zebra",
    "copper",
    "violet",
    "harbor",
    "pixel",
    "tundra",
    "lantern",
    "falcon",
    "meadow",
    "quartz",
    "saddle",
    "pepper",
    "glacier",
    "walnut",
    "comet",
    "velvet",
    "anchor",
)
# Background tints are muted so that every sprite colour stands out against every background.
TINTS: dict[str, tuple[int, int, int]] = {
    "forest-green": (34, 85, 45),
    "navy": (30, 40, 90),
    "maroon": (95, 30, 35),
    "olive": (100, 100, 40),
    "slate": (80, 90, 100),
    "brown": (105, 70, 40),
    "purple": (70, 40, 95),
    "teal": (30, 90, 90),
}
PATTERNS = ("striped", "checkered", "speckled", "dotted", "wavy", "plaid")
SPLIT_SEEDS = {"train": 0, "val": 10_000, "test": 20_000}
SPLIT_SIZE = 10_000
LOG_VERSION = 2


def background_name(background_id: int) -> str:
    """'forest-green striped' for an id in ``[0, len(TINTS) * len(PATTERNS))``."""
    tint = list(TINTS)[background_id % len(TINTS)]
    return f"{tint} {PATTERNS[background_id // len(TINTS)]}"


class WorldConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    minutes: float = Field(default=3.0, gt=0, le=120, description="Video length, minutes.")
    fps: int = Field(default=10, ge=1, le=60, description="Frames per second.")
    width: int = Field(default=320, ge=64, le=1920, multiple_of=2, description="Frame width, pixels (even).")
    height: int = Field(default=240, ge=64, le=1080, multiple_of=2, description="Frame height, pixels (even).")
    pan: bool = Field(default=True, description="Allow camera pans; False keeps the camera still in every scene.")
    p_pan: float = Field(default=0.5, ge=0, le=1, description="Probability that a scene pans (when pan is on).")
    pan_speed_px_per_second: tuple[float, float] = Field(default=(15.0, 40.0), description="Range of pan speeds.")
    scene_seconds: tuple[float, float] = Field(default=(20.0, 90.0), description="Range of scene lengths.")
    gap_seconds: tuple[float, float] = Field(default=(1.0, 8.0), description="Range of pauses between events.")
    sprite_speed_px_per_second: tuple[float, float] = Field(
        default=(50.0, 130.0), description="Range of sprite speeds."
    )
    sprite_size_fraction: tuple[float, float] = Field(
        default=(0.18, 0.28), description="Sprite side as a fraction of the frame height."
    )
    p_card: float = Field(default=0.2, ge=0, le=1, description="Probability that an event is a text card.")
    card_seconds: tuple[float, float] = Field(default=(2.5, 4.0), description="Range of text-card durations.")
    p_distractor: float = Field(
        default=0.35, ge=0, le=1, description="Probability that a sprite repeats an earlier sprite's shape or colour."
    )
    needles: int = Field(
        default=8,
        ge=0,
        le=20,
        description="Colour+shape combinations reserved to appear at most once, "
        "so long videos keep unique sprites to ask about.",
    )
    rare_shapes: bool = Field(
        default=True, description="Also show each of RARE_SHAPES at most once (needle questions in long videos)."
    )

    @model_validator(mode="after")
    def _check_ranges(self) -> WorldConfig:
        for name in (
            "pan_speed_px_per_second",
            "scene_seconds",
            "gap_seconds",
            "sprite_speed_px_per_second",
            "sprite_size_fraction",
            "card_seconds",
        ):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name}: need 0 < low <= high, got ({lo}, {hi})")
        if self.sprite_size_fraction[1] > 0.5:
            raise ValueError(
                "sprite_size_fraction: sprites larger than half the frame height leave no room to move; use <= 0.5"
            )
        return self

    @property
    def duration_seconds(self) -> float:
        return round(self.minutes * 60, 3)


class Scene(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(ge=0, description="Position in the video.")
    start_seconds: float = Field(ge=0, description="First time of the scene (a cut, except for scene 0).")
    end_seconds: float = Field(gt=0, description="End (exclusive) of the scene.")
    background_id: int = Field(ge=0, description="Background family: tint and pattern (see background_name).")
    background: str = Field(description="Human-readable background, e.g. 'forest-green striped'.")
    texture_seed: int = Field(ge=0, description="Seed of this scene's texture (two scenes never look alike).")
    pan: str | None = Field(
        description="Camera pan direction (content moves the opposite way), or None for a still camera."
    )
    pan_speed_px_per_second: float = Field(ge=0, description="Camera speed, 0 when still.")


class SpriteEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(ge=0, description="Position among the video's sprites, in time order.")
    start_seconds: float = Field(ge=0, description="The sprite starts to enter the frame.")
    end_seconds: float = Field(gt=0, description="The sprite has just left the frame (exclusive).")
    shape: str = Field(description="One of SHAPES or RARE_SHAPES.")
    colour: str = Field(description="One of COLOURS.")
    direction: str = Field(description="Direction of motion on screen: left, right, up or down.")
    speed_px_per_second: float = Field(gt=0, description="On-screen speed.")
    size: int = Field(gt=0, description="Side of the sprite's square box, pixels.")
    lane: int = Field(
        ge=0, description="Top (horizontal motion) or left (vertical motion) of the sprite's box, pixels."
    )
    scene: int = Field(ge=0, description="Index of the scene it happens in.")
    repeat_of: int | None = Field(
        default=None, description="Index of the earlier sprite whose shape or colour it repeats."
    )


class TextCard(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(ge=0, description="Position among the video's cards, in time order.")
    start_seconds: float = Field(ge=0, description="First time the card shows.")
    end_seconds: float = Field(gt=0, description="The card is gone (exclusive).")
    word: str = Field(description="The word on the card (drawn in capitals).")
    scene: int = Field(ge=0, description="Index of the scene it happens in.")


class EventLog(BaseModel):
    """Everything that happens in one world video."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(default=LOG_VERSION, description="Event-log format version.")
    seed: int = Field(description="Seed the log was drawn from.")
    duration_seconds: float = Field(gt=0, description="Video length.")
    fps: int = Field(gt=0, description="Frames per second.")
    width: int = Field(gt=0, description="Frame width, pixels.")
    height: int = Field(gt=0, description="Frame height, pixels.")
    config: WorldConfig = Field(description="The configuration the log was drawn with.")
    scenes: list[Scene] = Field(description="Scenes in time order; they tile [0, duration).")
    cuts_seconds: list[float] = Field(description="Hard cuts: the start of every scene but the first.")
    sprites: list[SpriteEvent] = Field(description="Sprite crossings in time order.")
    cards: list[TextCard] = Field(description="Text cards in time order.")

    @model_validator(mode="after")
    def _check_consistent(self) -> EventLog:
        if self.cuts_seconds != [s.start_seconds for s in self.scenes[1:]]:
            raise ValueError("cuts_seconds must list the start of every scene after the first")
        return self

    def scene_at(self, t: float) -> Scene:
        """The scene showing at time ``t`` (the last one for ``t >= duration``)."""
        for scene in self.scenes:
            if t < scene.end_seconds:
                return scene
        return self.scenes[-1]


def dump_log(log: EventLog) -> str:
    """The canonical JSON text of a log (sorted keys): identical bytes for identical logs."""
    return json.dumps(log.model_dump(mode="json"), indent=1, sort_keys=True) + "\n"


def save_log(log: EventLog, path: str | Path) -> None:
    Path(path).write_text(dump_log(log))


def load_log(path: str | Path) -> EventLog:
    return EventLog.model_validate_json(Path(path).read_text())


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def _scenes(rng: np.random.Generator, cfg: WorldConfig) -> list[Scene]:
    duration, scenes, t = cfg.duration_seconds, [], 0.0
    n_backgrounds = len(TINTS) * len(PATTERNS)
    previous = -1
    while t < duration:
        end = round(t + _uniform(rng, cfg.scene_seconds), 1)
        if duration - end < cfg.scene_seconds[0] / 2:  # no stub scene at the end
            end = duration
        if previous < 0:
            background = int(rng.integers(0, n_backgrounds))
        else:  # consecutive scenes always differ
            background = int(rng.integers(0, n_backgrounds - 1))
            background += background >= previous
        previous = background
        pans = cfg.pan and rng.random() < cfg.p_pan
        scenes.append(
            Scene(
                index=len(scenes),
                start_seconds=t,
                end_seconds=end,
                background_id=background,
                background=background_name(background),
                texture_seed=int(rng.integers(0, 2**31 - 1)),
                pan=str(rng.choice(DIRECTIONS)) if pans else None,
                pan_speed_px_per_second=round(_uniform(rng, cfg.pan_speed_px_per_second), 1) if pans else 0.0,
            )
        )
        t = end
    return scenes


class _Looks:
    """Draws sprite looks. Needles -- the rare shapes and a few reserved colour+shape combinations
    -- appear at most once each, at times spread over the video, so even an hour-long video has
    unique sprites to ask about; the other sprites use the remaining combinations, some repeating
    one attribute of an earlier sprite (a distractor)."""

    def __init__(self, rng: np.random.Generator, cfg: WorldConfig) -> None:
        combos = [(shape, colour) for shape in SHAPES for colour in COLOURS]
        picks = rng.permutation(len(combos))
        reserved = [combos[i] for i in picks[: cfg.needles]]
        self.common = [combos[i] for i in sorted(picks[cfg.needles :])]
        rare = [(shape, str(rng.choice(list(COLOURS)))) for shape in RARE_SHAPES] if cfg.rare_shapes else []
        needles = reserved + rare
        self.needles = [needles[i] for i in rng.permutation(len(needles))]
        self.times = sorted(rng.uniform(0, cfg.duration_seconds * 0.95, len(needles)).tolist())
        self.rng, self.cfg = rng, cfg

    def draw(self, earlier: list[SpriteEvent], t: float) -> tuple[str, str, int | None]:
        rng = self.rng
        if self.needles and t >= self.times[0]:
            self.times.pop(0)
            return (*self.needles.pop(), None)
        if earlier and rng.random() < self.cfg.p_distractor:
            base = earlier[int(rng.integers(0, len(earlier)))]
            near = [c for c in self.common if (c[0] == base.shape) != (c[1] == base.colour)]
            if near:
                shape, colour = near[int(rng.integers(0, len(near)))]
                return shape, colour, base.index
        shape, colour = self.common[int(rng.integers(0, len(self.common)))]
        return shape, colour, None


def _sprite(
    rng: np.random.Generator, cfg: WorldConfig, t: float, scene: Scene, earlier: list[SpriteEvent], looks: _Looks
) -> SpriteEvent:
    shape, colour, repeat_of = looks.draw(earlier, t)
    size = int(round(_uniform(rng, cfg.sprite_size_fraction) * cfg.height / 2)) * 2
    direction = str(rng.choice(DIRECTIONS))
    across, along = (cfg.width, cfg.height) if direction in ("left", "right") else (cfg.height, cfg.width)
    seconds = max(0.5, round((across + size) / _uniform(rng, cfg.sprite_speed_px_per_second), 1))
    lane = int(rng.integers(0, (along - size) // 2 + 1)) * 2
    return SpriteEvent(
        index=len(earlier),
        start_seconds=round(t, 1),
        end_seconds=round(t + seconds, 1),
        shape=shape,
        colour=colour,
        direction=direction,
        speed_px_per_second=round((across + size) / seconds, 1),
        size=size,
        lane=lane,
        scene=scene.index,
        repeat_of=repeat_of,
    )


def make_event_log(
    seed: int,
    minutes: float | None = None,
    fps: int | None = None,
    size: tuple[int, int] | None = None,
    pan: bool | None = None,
    config: WorldConfig | None = None,
) -> EventLog:
    """Draw a world's event log; the positional arguments override the matching ``config`` fields."""
    overrides = {k: v for k, v in {"minutes": minutes, "fps": fps, "pan": pan}.items() if v is not None}
    if size is not None:
        overrides.update(width=size[0], height=size[1])
    cfg = (config or WorldConfig()).model_copy(update=overrides)
    cfg = WorldConfig.model_validate(cfg.model_dump())  # re-validate the overrides
    rng = np.random.default_rng(seed)
    scenes = _scenes(rng, cfg)
    looks = _Looks(rng, cfg)
    sprites: list[SpriteEvent] = []
    cards: list[TextCard] = []
    for scene in scenes:
        t = scene.start_seconds + _uniform(rng, cfg.gap_seconds)
        while True:
            if rng.random() < cfg.p_card:
                length = round(_uniform(rng, cfg.card_seconds), 1)
                if t + length > scene.end_seconds - 0.5:
                    break
                cards.append(
                    TextCard(
                        index=len(cards),
                        start_seconds=round(t, 1),
                        end_seconds=round(t + length, 1),
                        word=str(rng.choice(WORDS)),
                        scene=scene.index,
                    )
                )
                end = cards[-1].end_seconds
            else:
                sprite = _sprite(rng, cfg, t, scene, sprites, looks)
                if sprite.end_seconds > scene.end_seconds - 0.5:
                    break
                sprites.append(sprite)
                end = sprite.end_seconds
            t = end + _uniform(rng, cfg.gap_seconds)
    return EventLog(
        seed=seed,
        duration_seconds=cfg.duration_seconds,
        fps=cfg.fps,
        width=cfg.width,
        height=cfg.height,
        config=cfg,
        scenes=scenes,
        cuts_seconds=[s.start_seconds for s in scenes[1:]],
        sprites=sprites,
        cards=cards,
    )
