"""Draw and encode a world video from its event log, frame by frame, straight in YUV 4:2:0.

Frames are composed in the encoder's own pixel format, so no colour conversion runs per frame:
each scene's texture is built once as periodic Y/U/V planes (a camera pan is a wrapped slice),
sprite masks are cached per (shape, size), text cards per word. Memory stays bounded by one
scene's texture whatever the video length. Cuts are forced to I-frames; libx264 runs
single-threaded and without its macroblock tree so the same log encodes to the same bytes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from foveate.evals.synthetic.events import COLOURS, PATTERNS, TINTS, EventLog, Scene, SpriteEvent, TextCard

logger = logging.getLogger(__name__)

TILE = 160  # texture period, pixels (even, so chroma offsets stay aligned)
CARD_Y, TEXT_Y = 28, 235
NOISE = 14  # amplitude of the fine texture noise, RGB levels


def rgb_to_yuv(rgb: np.ndarray) -> np.ndarray:
    """BT.601 limited-range YUV of ``(..., 3)`` RGB values (what libx264 assumes for yuv420p)."""
    rgb = np.asarray(rgb, dtype=np.float32) / 255.0
    m = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], dtype=np.float32)
    return rgb @ m.T + np.array([16.0, 128.0, 128.0], dtype=np.float32)


def _pattern(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A ``(TILE, TILE)`` float pattern in [0, 1], periodic with period TILE on both axes."""
    y, x = np.mgrid[0:TILE, 0:TILE].astype(np.float32)
    k = lambda lo, hi: int(rng.integers(lo, hi))  # noqa: E731 integer frequencies keep the tile periodic
    if kind == "striped":
        kx, ky = k(0, 6), k(0, 6)
        kx = kx or 4
        return (np.sin(2 * np.pi * (kx * x + ky * y) / TILE) > 0).astype(np.float32)
    if kind == "checkered":
        b = int(rng.choice([16, 20, 32, 40]))
        i = np.arange(TILE) // b  # integers: the same 0 / 1 as the float grid's, without it
        return ((i[:, None] + i[None, :]) % 2).astype(np.float32)
    if kind == "speckled":
        b = int(rng.choice([8, 10, 16, 20]))
        return rng.random((TILE // b, TILE // b)).astype(np.float32).repeat(b, 0).repeat(b, 1)
    if kind == "dotted":
        s = int(rng.choice([20, 32, 40]))
        r = s * float(rng.uniform(0.2, 0.35))
        return (((x % s) - s / 2) ** 2 + ((y % s) - s / 2) ** 2 < r * r).astype(np.float32)
    if kind == "wavy":
        kx, ky, a = k(3, 8), k(1, 4), float(rng.uniform(8, 20))
        return 0.5 + 0.5 * np.sin(2 * np.pi * (kx * x + a * np.sin(2 * np.pi * ky * y / TILE)) / TILE)
    kx, ky = k(2, 6), k(2, 6)  # plaid
    return 0.5 * (
        (np.sin(2 * np.pi * kx * x / TILE) > 0.3).astype(np.float32) + (np.sin(2 * np.pi * ky * y / TILE) > 0.3)
    )


@lru_cache(maxsize=4)
def scene_planes(scene: Scene, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, U, V canvases one tile larger than the frame (chroma at half resolution), periodic in TILE."""
    rng = np.random.default_rng(scene.texture_seed)
    n_tints = len(TINTS)
    tint = np.array(list(TINTS.values())[scene.background_id % n_tints], dtype=np.float32)
    pattern = _pattern(PATTERNS[scene.background_id // n_tints], rng)
    # Fine noise everywhere gives block matching something to lock on to during pans.
    noise = rng.normal(0, 1, (TILE // 4, TILE // 4)).astype(np.float32).repeat(4, 0).repeat(4, 1)
    rgb = tint * (0.6 + 0.8 * pattern[..., None]) + NOISE * noise[..., None]
    yuv = rgb_to_yuv(np.clip(rgb, 0, 255))
    # 2x2 chroma means, summed in the order numpy's mean(axis=(1, 3)) sums them (ten times faster than it)
    q = yuv[..., 1:].reshape(TILE // 2, 2, TILE // 2, 2, 2)
    chroma = (q[:, 0, :, 0] + q[:, 0, :, 1] + q[:, 1, :, 0] + q[:, 1, :, 1]) / 4
    y, u, v = (np.clip(np.rint(p), 0, 255).astype(np.uint8) for p in (yuv[..., 0], chroma[..., 0], chroma[..., 1]))
    # the tile is rounded once, then repeated: the same canvases as rounding the repeated floats, a few times faster
    reps = (math.ceil((height + TILE) / TILE), math.ceil((width + TILE) / TILE))
    half = (height + TILE) // 2, (width + TILE) // 2
    return (
        np.tile(y, reps)[: height + TILE, : width + TILE],
        np.tile(u, reps)[: half[0], : half[1]],
        np.tile(v, reps)[: half[0], : half[1]],
    )


def camera_offset(scene: Scene, t: float) -> tuple[int, int]:
    """Even (x, y) offset of the camera window at time ``t``; pan 'right' moves the window right."""
    shift = int(round(scene.pan_speed_px_per_second * (t - scene.start_seconds))) // 2 * 2
    dx, dy = {"right": (shift, 0), "left": (-shift, 0), "down": (0, shift), "up": (0, -shift)}.get(
        scene.pan or "", (0, 0)
    )
    return dx % TILE, dy % TILE


@lru_cache(maxsize=64)
def sprite_mask(shape: str, size: int) -> np.ndarray:
    """``(size, size)`` bool mask of a shape."""
    img = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(img)
    s = size - 1
    if shape == "circle":
        d.ellipse([0, 0, s, s], fill=255)
    elif shape == "square":
        d.rectangle([size // 10, size // 10, s - size // 10, s - size // 10], fill=255)
    elif shape == "triangle":
        d.polygon([(s / 2, 0), (s, s), (0, s)], fill=255)
    elif shape == "star":
        pts = [
            (
                s / 2 + (s / 2 if i % 2 == 0 else s / 5) * math.sin(i * math.pi / 5),
                s / 2 - (s / 2 if i % 2 == 0 else s / 5) * math.cos(i * math.pi / 5),
            )
            for i in range(10)
        ]
        d.polygon(pts, fill=255)
    elif shape == "diamond":
        d.polygon([(s / 2, 0), (s, s / 2), (s / 2, s), (0, s / 2)], fill=255)
    elif shape == "hexagon":
        d.polygon(
            [(s / 2 + s / 2 * math.cos(a), s / 2 + s / 2 * math.sin(a)) for a in np.arange(6) * math.pi / 3], fill=255
        )
    elif shape == "ring":
        d.ellipse([0, 0, s, s], fill=255)
        d.ellipse([size * 0.3, size * 0.3, s - size * 0.3, s - size * 0.3], fill=0)
    elif shape == "cross":
        d.rectangle([s * 0.34, 0, s * 0.66, s], fill=255)
        d.rectangle([0, s * 0.34, s, s * 0.66], fill=255)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return np.asarray(img) > 127


def sprite_position(sprite: SpriteEvent, t: float, width: int, height: int) -> tuple[int, int]:
    """Even top-left (x, y) of the sprite's box at time ``t`` (off-frame at the start and end)."""
    p = (t - sprite.start_seconds) / (sprite.end_seconds - sprite.start_seconds)
    s = sprite.size
    x = {"right": -s + p * (width + s), "left": width - p * (width + s)}.get(sprite.direction, sprite.lane)
    y = {"down": -s + p * (height + s), "up": height - p * (height + s)}.get(sprite.direction, sprite.lane)
    return int(math.floor(x / 2)) * 2, int(math.floor(y / 2)) * 2


@lru_cache(maxsize=32)
def card_mask(word: str, width: int, height: int) -> np.ndarray:
    """``(card_h, card_w)`` uint8 text coverage of a card showing ``word`` in capitals."""
    cw, ch = (width * 4 // 5) // 2 * 2, (height * 2 // 5) // 2 * 2
    text = word.upper()
    size = max(10, ch * 3 // 5)
    while True:
        font = ImageFont.load_default(size=size)
        left, top, right, bottom = font.getbbox(text)
        if right - left <= cw * 0.9 or size <= 10:
            break
        size -= 2
    img = Image.new("L", (cw, ch), 0)
    ImageDraw.Draw(img).text((cw / 2, ch / 2), text, fill=255, font=font, anchor="mm")
    return np.asarray(img)


@lru_cache(maxsize=1)
def _sprite_colours() -> dict[str, np.ndarray]:
    """Each sprite colour as yuv420p levels."""
    return {name: np.rint(rgb_to_yuv(rgb)).astype(np.uint8) for name, rgb in COLOURS.items()}


class FrameComposer:
    """Composes frame after frame of one log as a flat yuv420p buffer."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        w, h = log.width, log.height
        self._buf = np.empty(w * h * 3 // 2, dtype=np.uint8)
        self.y = self._buf[: w * h].reshape(h, w)
        self.u = self._buf[w * h : w * h * 5 // 4].reshape(h // 2, w // 2)
        self.v = self._buf[w * h * 5 // 4 :].reshape(h // 2, w // 2)
        self._colours = _sprite_colours()

    def compose(self, t: float, scene: Scene, sprites: list[SpriteEvent], cards: list[TextCard]) -> np.ndarray:
        """The frame at time ``t`` as a ``(H * 3 // 2, W)`` uint8 yuv420p array (a view, reused next call)."""
        w, h = self.log.width, self.log.height
        py, pu, pv = scene_planes(scene, w, h)
        ox, oy = camera_offset(scene, t)
        self.y[:] = py[oy : oy + h, ox : ox + w]
        self.u[:] = pu[oy // 2 : oy // 2 + h // 2, ox // 2 : ox // 2 + w // 2]
        self.v[:] = pv[oy // 2 : oy // 2 + h // 2, ox // 2 : ox // 2 + w // 2]
        for sprite in sprites:
            self._draw_sprite(sprite, t)
        for card in cards:
            self._draw_card(card)
        return self._buf.reshape(h * 3 // 2, w)

    def _draw_sprite(self, sprite: SpriteEvent, t: float) -> None:
        w, h = self.log.width, self.log.height
        mask = sprite_mask(sprite.shape, sprite.size)
        x, y = sprite_position(sprite, t, w, h)
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + sprite.size, w), min(y + sprite.size, h)
        if x1 <= x0 or y1 <= y0:
            return
        yuv = self._colours[sprite.colour]
        self.y[y0:y1, x0:x1][mask[y0 - y : y1 - y, x0 - x : x1 - x]] = yuv[0]
        cm = mask[y0 - y : y1 - y : 2, x0 - x : x1 - x : 2]
        self.u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2][cm[: (y1 - y0) // 2, : (x1 - x0) // 2]] = yuv[1]
        self.v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2][cm[: (y1 - y0) // 2, : (x1 - x0) // 2]] = yuv[2]

    def _draw_card(self, card: TextCard) -> None:
        w, h = self.log.width, self.log.height
        text = card_mask(card.word, w, h)
        ch, cw = text.shape
        x0, y0 = (w - cw) // 4 * 2, (h - ch) // 4 * 2
        self.y[y0 : y0 + ch, x0 : x0 + cw] = CARD_Y + (text.astype(np.uint16) * (TEXT_Y - CARD_Y) // 255).astype(
            np.uint8
        )
        self.u[y0 // 2 : (y0 + ch) // 2, x0 // 2 : (x0 + cw) // 2] = 128
        self.v[y0 // 2 : (y0 + ch) // 2, x0 // 2 : (x0 + cw) // 2] = 128


def render_frame(log: EventLog, t: float) -> np.ndarray:
    """The frame at ``t`` seconds as ``(H, W, 3) uint8`` RGB, drawn straight from the log (no video).

    The composition :func:`render_video` encodes at ``t`` (before compression), converted to RGB by
    libswscale as PyAV's ``to_ndarray(format="rgb24")`` converts decoded frames, so it looks like
    what the agent's tools decode.
    """
    scene = log.scene_at(t)
    sprites = [s for s in log.sprites if s.start_seconds <= t < s.end_seconds]
    cards = [c for c in log.cards if c.start_seconds <= t < c.end_seconds]
    yuv = FrameComposer(log).compose(t, scene, sprites, cards)
    return av.VideoFrame.from_ndarray(yuv, format="yuv420p").to_ndarray(format="rgb24")


def _encoder_options(log: EventLog, preset: str) -> dict[str, str]:
    keyint = max(1, 5 * log.fps)
    # Diamond search and subme 1 cut encode time by a quarter against plain veryfast; the motion
    # vectors stay right because sprites and pans move a few pixels per frame. No macroblock tree:
    # with it, the same frames encoded in one process came out with other bytes now and then
    # (the first group of pictures of 2 of 32 one-minute 160x120 videos); without it they do not.
    return {
        "preset": preset,
        "crf": "26",
        "threads": "1",
        "x264-params": f"keyint={keyint}:min-keyint={max(1, log.fps)}:scenecut=40"
        ":threads=1:sliced-threads=0:me=dia:subme=1:mbtree=0",
    }


def render_video(
    log: EventLog, path: str | Path, progress: Callable[[float], None] | None = None, preset: str = "veryfast"
) -> Path:
    """Encode the log's video to ``path`` (H.264 yuv420p): I-frame at every cut, keyframe at least every 5 s.

    ``progress`` gets the fraction of frames done, about once per second of video.
    """
    path = Path(path)
    composer = FrameComposer(log)
    n = int(round(log.duration_seconds * log.fps))
    si, sprite_i, card_i = 0, 0, 0
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=log.fps)
        stream.width, stream.height, stream.pix_fmt = log.width, log.height, "yuv420p"
        stream.options = _encoder_options(log, preset)
        for i in range(n):
            t = i / log.fps
            cut = False
            while si < len(log.scenes) - 1 and log.scenes[si].end_seconds <= t + 1e-9:
                si, cut = si + 1, True
            while sprite_i < len(log.sprites) and log.sprites[sprite_i].end_seconds <= t:
                sprite_i += 1
            while card_i < len(log.cards) and log.cards[card_i].end_seconds <= t:
                card_i += 1
            sprites = [s for s in log.sprites[sprite_i : sprite_i + 2] if s.start_seconds <= t < s.end_seconds]
            cards = [c for c in log.cards[card_i : card_i + 2] if c.start_seconds <= t < c.end_seconds]
            frame = av.VideoFrame.from_ndarray(composer.compose(t, log.scenes[si], sprites, cards), format="yuv420p")
            if cut:
                frame.pict_type = av.video.frame.PictureType.I
            frame.pts = i
            out.mux(stream.encode(frame))
            if progress is not None and i % log.fps == 0:
                progress(i / n)
        out.mux(stream.encode())
    if progress is not None:
        progress(1.0)
    logger.debug("rendered %s: %d frames", path, n)
    return path
