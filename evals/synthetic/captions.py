"""Text descriptions of world videos, from the event log: per clip and per frame.

``clip_captions`` describes fixed windows (the clips a VideoMemory indexes), for retrieval
checks; ``frame_captions`` yields (time, caption) pairs for contrastive fine-tuning of the clip
embedder (``frame_caption_forms``: each time with every true description of its frame, the short
phrases a retrieval query uses among them): decode the frame at ``time`` (e.g.
``VideoMemory.frames_at``) and pair it with the caption. Captions name exactly what is visible:
"a red star moving right over a forest-green striped background", "a text card reading 'APPLE' over
a navy dotted background".
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from foveate.evals.synthetic.events import EventLog, Scene, SpriteEvent, TextCard


def _background(scene: Scene) -> str:
    return f"a {scene.background} background"


def sprite_phrase(sprite: SpriteEvent) -> str:
    return f"a {sprite.colour} {sprite.shape} moving {sprite.direction}"


def card_phrase(card: TextCard) -> str:
    return f"a text card reading '{card.word.upper()}'"


def describe(things: list[str], scene: Scene) -> str:
    """'a red star moving right over a navy dotted background' (or just the background when empty)."""
    camera = f", camera panning {scene.pan}" if scene.pan else ""
    if not things:
        return f"{_background(scene)}{camera}"
    listed = things[0] if len(things) == 1 else ", ".join(things[:-1]) + f" and {things[-1]}"
    return f"{listed} over {_background(scene)}{camera}"


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def clip_captions(
    event_log: EventLog, clip_seconds: float, min_overlap_seconds: float = 0.5
) -> list[tuple[float, float, str]]:
    """``(start, end, caption)`` for consecutive clips ``[i * clip_seconds, (i + 1) * clip_seconds)``.

    An event is mentioned when it overlaps the clip by at least ``min_overlap_seconds`` (or
    lies wholly inside it); the background is that of the scene covering most of the clip.
    """
    if clip_seconds <= 0:
        raise ValueError(f"clip_seconds must be > 0, got {clip_seconds}")
    log, out = event_log, []
    n = int(np.ceil(log.duration_seconds / clip_seconds - 1e-9))
    events = sorted(
        [(s.start_seconds, s.end_seconds, sprite_phrase(s)) for s in log.sprites]
        + [(c.start_seconds, c.end_seconds, card_phrase(c)) for c in log.cards]
    )
    for i in range(n):
        a, b = i * clip_seconds, min(log.duration_seconds, (i + 1) * clip_seconds)
        scene = max(log.scenes, key=lambda s: _overlap(a, b, s.start_seconds, s.end_seconds))
        things = [
            text
            for s, e, text in events
            if _overlap(a, b, s, e) >= min(min_overlap_seconds, e - s) and _overlap(a, b, s, e) > 0
        ]
        out.append((round(a, 3), round(b, 3), describe(things, scene)))
    return out


def sprite_forms(sprite: SpriteEvent, scene: Scene) -> list[str]:
    """True descriptions of a frame showing ``sprite``, the full caption first, then the shorter
    phrases a retrieval query names it by: 'a red star moving right', 'a red star', 'a star', 'red shapes'."""
    return [
        describe([sprite_phrase(sprite)], scene),
        sprite_phrase(sprite),
        f"a {sprite.colour} {sprite.shape}",
        f"a {sprite.shape}",
        f"{sprite.colour} shapes",
    ]


def card_forms(card: TextCard, scene: Scene) -> list[str]:
    """True descriptions of a frame showing ``card``, the full caption first."""
    return [describe([card_phrase(card)], scene), card_phrase(card), "a text card"]


def frame_caption_forms(
    event_log: EventLog, frames_per_event: int = 3, background_frames_per_scene: int = 1, seed: int = 0
) -> Iterator[tuple[float, list[str]]]:
    """``(time_seconds, captions)``: :func:`frame_captions`' times, each with every true description
    of its frame (:func:`sprite_forms`, :func:`card_forms`; a background frame has its caption alone)."""
    log, rng = event_log, np.random.default_rng(seed)
    pairs: list[tuple[float, list[str]]] = []
    for sprite in log.sprites:
        a, b = sprite.start_seconds, sprite.end_seconds
        for k in range(frames_per_event):
            frac = 0.25 + 0.5 * (k + rng.uniform(0.2, 0.8)) / frames_per_event
            t = a + frac * (b - a)
            pairs.append((t, sprite_forms(sprite, log.scene_at(t))))
    for card in log.cards:
        for k in range(frames_per_event):
            t = card.start_seconds + (k + rng.uniform(0.2, 0.8)) / frames_per_event * (
                card.end_seconds - card.start_seconds
            )
            pairs.append((t, card_forms(card, log.scene_at(t))))
    busy = sorted(
        [(s.start_seconds, s.end_seconds) for s in log.sprites] + [(c.start_seconds, c.end_seconds) for c in log.cards]
    )
    for scene in log.scenes:
        free = _free_times(scene, busy)
        for t in (free[i] for i in rng.permutation(len(free))[:background_frames_per_scene]):
            pairs.append((float(t), [describe([], scene)]))
    pairs.sort(key=lambda p: (p[0], p[1][0]))
    yield from ((round(t, 3), forms) for t, forms in pairs)


def frame_captions(
    event_log: EventLog, frames_per_event: int = 3, background_frames_per_scene: int = 1, seed: int = 0
) -> Iterator[tuple[float, str]]:
    """``(time_seconds, caption)`` pairs for training an image-text embedder on world frames.

    For each sprite, ``frames_per_event`` times spread over the middle half of its crossing (the
    sprite is fully in frame there); for each text card, as many times inside it; for each scene,
    ``background_frames_per_scene`` times when nothing else is on screen, captioned with the
    background alone. Pairs come in time order; ``seed`` jitters the times reproducibly.
    """
    for t, forms in frame_caption_forms(event_log, frames_per_event, background_frames_per_scene, seed):
        yield t, forms[0]


def _free_times(scene: Scene, busy: list[tuple[float, float]], step: float = 0.5) -> list[float]:
    """Times on a ``step`` grid inside the scene, at least 0.5 s away from cuts and events."""
    times = np.arange(scene.start_seconds + 0.5, scene.end_seconds - 0.5, step)
    return [float(t) for t in times if not any(s - 0.25 <= t < e + 0.25 for s, e in busy)]
