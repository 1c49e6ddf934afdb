"""The synthetic long-video world: procedural videos with a ground-truth event log.

Scenes (distinct textures, hard cuts, camera pans) host events: coloured sprites that enter,
cross the frame in one direction and leave, and text cards with words. Everything is drawn with
numpy and encoded with libx264 frame by frame (bounded memory); the event log is JSON and fully
determined by the seed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydantic import BaseModel, Field

COLOURS = {"red": (230, 30, 30), "green": (30, 200, 60), "blue": (40, 70, 235), "yellow": (240, 220, 30),
           "magenta": (220, 40, 220), "cyan": (40, 220, 230), "white": (250, 250, 250)}
SHAPES = ("circle", "square", "triangle", "star", "cross")
DIRECTIONS = ("right", "left", "up", "down")
WORDS = ("apple", "river", "candle", "orbit", "maple", "zebra", "copper", "violet", "harbor", "pixel", "tundra", "lantern")
SPLIT_SEEDS = {"train": 0, "val": 10_000, "test": 20_000}


class Scene(BaseModel):
    start_seconds: float
    end_seconds: float
    texture: int
    pan: str | None = Field(description="Camera pan direction (content moves the other way), or None.")


class SpriteEvent(BaseModel):
    start_seconds: float
    end_seconds: float
    shape: str
    colour: str
    direction: str = Field(description="Direction of motion on screen.")
    size: int


class TextCard(BaseModel):
    start_seconds: float
    end_seconds: float
    word: str


class EventLog(BaseModel):
    seed: int
    duration_seconds: float
    fps: int
    width: int
    height: int
    scenes: list[Scene]
    sprites: list[SpriteEvent]
    cards: list[TextCard]

    @property
    def cuts_seconds(self) -> list[float]:
        return [s.start_seconds for s in self.scenes[1:]]


def make_event_log(seed: int, minutes: float, fps: int = 10, size: tuple[int, int] = (320, 240), pan: bool = True) -> EventLog:
    rng = np.random.default_rng(seed)
    duration = round(minutes * 60, 3)
    scenes, t = [], 0.0
    while t < duration:
        length = float(rng.uniform(20, 60))
        end = duration if duration - (t + length) < 10 else round(t + length, 1)
        scenes.append(Scene(start_seconds=t, end_seconds=end, texture=int(rng.integers(0, 1_000_000)),
                            pan=str(rng.choice(DIRECTIONS)) if pan and rng.random() < 0.5 else None))
        t = end
    sprites, cards = [], []
    t = float(rng.uniform(2, 6))
    while t < duration - 8:
        if rng.random() < 0.8:
            length = float(rng.uniform(3, 6))
            sprites.append(SpriteEvent(start_seconds=round(t, 1), end_seconds=round(t + length, 1), shape=str(rng.choice(SHAPES)),
                                       colour=str(rng.choice(list(COLOURS))), direction=str(rng.choice(DIRECTIONS)),
                                       size=int(rng.integers(size[1] // 6, size[1] // 4))))
        else:
            length = 3.0
            cards.append(TextCard(start_seconds=round(t, 1), end_seconds=round(t + length, 1), word=str(rng.choice(WORDS))))
        t += length + float(rng.uniform(2, 10))
    return EventLog(seed=seed, duration_seconds=duration, fps=fps, width=size[0], height=size[1], scenes=scenes, sprites=sprites, cards=cards)


def _texture(seed: int, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    block = int(rng.integers(8, 24))
    base = rng.integers(30, 200, size=3)
    tex = (rng.random((h // block + 2, w // block + 2, 1)) * 90).astype(np.int16) + base
    return np.clip(tex, 0, 255).astype(np.uint8).repeat(block, 0).repeat(block, 1)


def _sprite_mask(shape: str, s: int) -> np.ndarray:
    img = Image.new("L", (s, s), 0)
    d = ImageDraw.Draw(img)
    if shape == "circle":
        d.ellipse([0, 0, s - 1, s - 1], fill=255)
    elif shape == "square":
        d.rectangle([s // 8, s // 8, s - s // 8, s - s // 8], fill=255)
    elif shape == "triangle":
        d.polygon([(s // 2, 0), (s - 1, s - 1), (0, s - 1)], fill=255)
    elif shape == "star":
        pts = [(s / 2 + (s / 2 if i % 2 == 0 else s / 5) * np.sin(i * np.pi / 5), s / 2 - (s / 2 if i % 2 == 0 else s / 5) * np.cos(i * np.pi / 5)) for i in range(10)]
        d.polygon(pts, fill=255)
    else:
        d.rectangle([s * 3 // 8, 0, s * 5 // 8, s - 1], fill=255)
        d.rectangle([0, s * 3 // 8, s - 1, s * 5 // 8], fill=255)
    return np.asarray(img) > 127


class _Renderer:
    """Draws frame ``i`` of a log; caches the current scene's texture and sprite masks."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self._tex_key, self._tex = None, None
        self._masks: dict = {}
        self._font = ImageFont.load_default(size=max(12, log.height // 6)) if hasattr(ImageFont, "load_default") else None

    def background(self, scene: Scene, t: float) -> np.ndarray:
        h, w = self.log.height, self.log.width
        if self._tex_key != scene.texture:
            self._tex_key, self._tex = scene.texture, _texture(scene.texture, h * 3, w * 3)
        shift = int((t - scene.start_seconds) * 30) % (w * 2)  # 30 px/s camera pan
        dx, dy = {"right": (shift, 0), "left": (w * 2 - shift, 0), "down": (0, shift % (h * 2)), "up": (0, (h * 2 - shift % (h * 2)))}.get(scene.pan, (0, 0))
        return self._tex[dy:dy + h, dx:dx + w].copy()

    def frame(self, t: float, scene: Scene, sprites: list[SpriteEvent], cards: list[TextCard]) -> np.ndarray:
        f = self.background(scene, t)
        h, w = f.shape[:2]
        for sp in sprites:
            p = (t - sp.start_seconds) / (sp.end_seconds - sp.start_seconds)
            s = sp.size
            mask = self._masks.setdefault((sp.shape, s), _sprite_mask(sp.shape, s))
            x = {"right": -s + p * (w + s), "left": w - p * (w + s)}.get(sp.direction, w / 2 - s / 2)
            y = {"down": -s + p * (h + s), "up": h - p * (h + s)}.get(sp.direction, h / 2 - s / 2)
            x, y = int(x), int(y)
            x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + s, w), min(y + s, h)
            if x1 > x0 and y1 > y0:
                m = mask[y0 - y:y1 - y, x0 - x:x1 - x]
                f[y0:y1, x0:x1][m] = COLOURS[sp.colour]
        for card in cards:
            img = Image.fromarray(f)
            d = ImageDraw.Draw(img)
            d.rectangle([w // 8, h // 3, w * 7 // 8, h * 2 // 3], fill=(20, 20, 20))
            d.text((w // 2, h // 2), card.word.upper(), fill=(255, 255, 255), anchor="mm", font=self._font)
            f = np.asarray(img).copy()
        return f


def render_video(log: EventLog, path: str | Path, progress: Callable[[float], None] | None = None) -> Path:
    """Encode the log's video to ``path`` (H.264, keyframe at least every 5 s, scene cuts as I-frames)."""
    renderer = _Renderer(log)
    n = int(round(log.duration_seconds * log.fps))
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=log.fps)
        stream.width, stream.height, stream.pix_fmt = log.width, log.height, "yuv420p"
        stream.options = {"preset": "veryfast", "g": str(log.fps * 5), "crf": "26", "threads": "1"}
        si = 0
        for i in range(n):
            t = i / log.fps
            while log.scenes[si].end_seconds <= t and si < len(log.scenes) - 1:
                si += 1
            active = [s for s in log.sprites if s.start_seconds <= t < s.end_seconds]
            cards = [c for c in log.cards if c.start_seconds <= t < c.end_seconds]
            frame = av.VideoFrame.from_ndarray(renderer.frame(t, log.scenes[si], active, cards), format="rgb24")
            out.mux(stream.encode(frame))
            if progress and i % (log.fps * 10) == 0:
                progress(i / n)
        out.mux(stream.encode())
    return Path(path)


def save_log(log: EventLog, path: Path) -> None:
    path.write_text(json.dumps(log.model_dump(), indent=1, sort_keys=True))
