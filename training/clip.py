"""Contrastive fine-tuning of the OpenCLIP clip embedder on synthetic-world (frame, caption) pairs.

Pairs: ``evals.synthetic.captions.frame_caption_forms`` gives times and captions from each video's
event log (the full caption and the shorter true phrases a retrieval query uses: 'a red star',
'a star', 'red shapes'); the frames at those times are decoded with memory's frame access. Each
step pairs a frame with its full caption or, with ``short_captions``, a shorter one. Loss: symmetric
InfoNCE (CLIP's), every text in the batch that describes a frame counted as its positive (several
frames of one event share one caption; 'a star' describes every star). AdamW, no weight decay on gains, biases and the
temperature. The tuned model is written with ``ClipEmbedder.save`` to OUTPUT/embedder and loads
with ``--embedder openclip:OUTPUT/embedder``.

Retrieval R@1 is measured before and after on a held-out world through the real retrieval path:
each video is ingested with the embedder (a private cache per measurement) and every distinct
sprite and text card is searched by its caption with ``VideoMemory.search``; a hit counts when
the top clip overlaps the event.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from foveate.training.config import ClipRunConfig
from foveate.training.schedule import warmup_cosine

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class ClipResult:
    embedder: Path
    pairs: int
    r1_before: float
    r1_after: float
    losses: list[float]
    r1_subject_before: float | None = None
    r1_subject_after: float | None = None

    def summary(self) -> dict:
        return {
            "embedder": f"openclip:{self.embedder}",
            "pairs": self.pairs,
            "r1_before": self.r1_before,
            "r1_after": self.r1_after,
            "r1_subject_before": self.r1_subject_before,
            "r1_subject_after": self.r1_subject_after,
            "first_loss": self.losses[0] if self.losses else None,
            "last_loss": self.losses[-1] if self.losses else None,
        }


def world_videos(world: Path) -> list[Path]:
    from foveate.training.assets import world_rows

    return sorted({Path(r.video) for r in world_rows(world)})


def collect_pairs(world: Path, frames_per_event: int, max_side: int, seed: int) -> tuple[np.ndarray, list[list[str]]]:
    """``(frames (N, H, W, 3) uint8, captions)`` for every video of ``world``; each frame's captions are
    all its true descriptions, the full caption first (``frame_caption_forms``)."""
    from foveate.evals.synthetic.captions import frame_caption_forms
    from foveate.memory.frames import frames_at
    from foveate.memory.probe import probe
    from foveate.training.assets import event_log

    frames, captions = [], []
    for video in world_videos(world):
        pairs = list(frame_caption_forms(event_log(world, video), frames_per_event, seed=seed))
        info = probe(video)
        frames.append(
            frames_at(info.path, [t for t, _ in pairs], max_side, info.duration_seconds, info.rotation_degrees)
        )
        captions += [forms for _, forms in pairs]
    return np.concatenate(frames), captions


def event_queries(log, subject: bool = False) -> list[tuple[str, float, float]]:
    """One query per sprite or text card of an event log: ``(text, start, end)``. The text is the caption
    as in training or, with ``subject``, what a controller's query names: 'a red star', 'a text card
    reading 'APPLE''."""
    from foveate.evals.synthetic.captions import card_phrase, describe, sprite_phrase

    events = [(sprite_phrase(s), f"a {s.colour} {s.shape}", s) for s in log.sprites]
    events += [(card_phrase(c), card_phrase(c), c) for c in log.cards]
    return [
        (
            short if subject else describe([phrase], log.scene_at((t.start_seconds + t.end_seconds) / 2)),
            t.start_seconds,
            t.end_seconds,
        )
        for phrase, short, t in events
    ]


def retrieval_r1(embedder, world: Path, cache_dir: Path, clip_seconds: float) -> dict[str, float]:
    """R@1 of event queries over the clips of ``world``'s videos, through ``VideoMemory.search``.

    Each sprite and text card is searched by its caption ("a red star moving down over a navy
    dotted background": ``"caption"``) and by its subject ("a red star": ``"subject"``); a hit is a top
    clip that overlaps the event's time span.
    """
    from foveate.memory.config import IngestConfig
    from foveate.memory.video_memory import ingest
    from foveate.training.assets import event_log

    shutil.rmtree(cache_dir, ignore_errors=True)
    hits = {"caption": 0, "subject": 0}
    total = 0
    for video in world_videos(world):
        memory = ingest(video, cache_root=cache_dir, embedder=embedder, config=IngestConfig(clip_seconds=clip_seconds))
        log = event_log(world, video)
        for kind in hits:
            for text, start, end in event_queries(log, subject=kind == "subject"):
                top = memory.search(text, k=1)
                hits[kind] += bool(top) and top[0].start_seconds < end and top[0].end_seconds > start
        total += len(log.sprites) + len(log.cards)
    return {kind: n / max(1, total) for kind, n in hits.items()}


def _param_groups(model, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "logit_scale" in name or "bias" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def contrastive_loss(image_features, text_features, logit_scale, same_caption):
    """Symmetric InfoNCE; ``same_caption`` (B, B) bool marks the positives of each row (``[i, j]``: text j
    describes image i)."""
    import torch
    import torch.nn.functional as F

    logits = logit_scale * F.normalize(image_features, dim=-1) @ F.normalize(text_features, dim=-1).T
    targets = same_caption.float() / same_caption.float().sum(1, keepdim=True)
    return (
        torch.sum(-targets * F.log_softmax(logits, 1), 1).mean()
        + torch.sum(-targets.T * F.log_softmax(logits.T, 1), 1).mean()
    ) / 2


def _pick_captions(forms: list[list[str]], batch: list[int], full_share: float, rng: np.random.Generator) -> list[str]:
    """One caption per pair of ``batch``: the full caption with probability ``full_share``, else one of
    the shorter true descriptions (uniformly)."""
    picked = []
    for i in batch:
        f = forms[i]
        short = len(f) > 1 and rng.random() >= full_share
        picked.append(f[1 + int(rng.integers(len(f) - 1))] if short else f[0])
    return picked


def lr_factor(config: ClipRunConfig, steps: int, step: int) -> float:
    """The learning rate of ``step`` (0-based) as a share of ``config.learning_rate``."""
    if config.lr_schedule == "constant":
        return 1.0
    return warmup_cosine(step, config.warmup_steps, config.warmup_steps, steps)


def train_embedder(
    embedder,
    frames: np.ndarray,
    captions: list[list[str]] | list[str],
    config: ClipRunConfig,
    progress: Progress | None = None,
) -> tuple[object, list[float]]:
    """A tuned copy of ``embedder`` (the loaded one is left untouched) and the loss per step.

    ``captions``: per frame, a caption or its true descriptions, full caption first. Each step pairs a
    frame with its full caption or (with ``config.short_captions``) one of the shorter ones; a text is a
    positive of every frame it describes, so 'a star' is one of each star's frame in the batch.
    """
    import torch
    from PIL import Image

    from foveate.memory.embedder import ClipEmbedder

    torch.manual_seed(config.seed)
    model = copy.deepcopy(embedder.model).train()
    model.logit_scale.requires_grad_(config.train_logit_scale)
    device = next(model.parameters()).device
    images = torch.stack([embedder.preprocess(Image.fromarray(f)) for f in frames])
    forms = [[c] if isinstance(c, str) else list(c) for c in captions]
    names = sorted({c for f in forms for c in f})
    index = {c: i for i, c in enumerate(names)}
    described = [{index[c] for c in f} for f in forms]  # the texts true of each frame
    tokens = embedder.tokenizer(names)
    full_share = 1.0 - config.short_captions
    opt = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.learning_rate)
    gen = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    steps, losses = config.epochs * math.ceil(len(frames) / config.batch_size), []
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, partial(lr_factor, config, steps))
    for _epoch in range(config.epochs):
        for batch in torch.randperm(len(frames), generator=gen).split(config.batch_size):
            if len(batch) < 2:
                continue
            rows = batch.tolist()
            b_ids = [index[c] for c in _pick_captions(forms, rows, full_share, rng)]
            positives = torch.tensor([[j in described[i] for j in b_ids] for i in rows])
            loss = contrastive_loss(
                model.encode_image(images[batch].to(device)),
                model.encode_text(tokens[torch.tensor(b_ids)].to(device)),
                model.logit_scale.exp(),
                positives.to(device),
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
            losses.append(float(loss.detach()))
            if progress:
                progress("train", len(losses), steps)
    model.eval()
    tuned = ClipEmbedder(
        embedder.spec, model, embedder.preprocess, embedder.tokenizer, embedder.model_cfg, embedder.preprocess_cfg
    )
    return tuned, losses


def run_clip(config: ClipRunConfig, out: Path, progress: Progress | None = None) -> ClipResult:
    """Pairs, R@1 before (captions and subjects as queries), training, save, R@1 after (from the saved
    directory)."""
    from foveate.memory.embedder import load_embedder
    from foveate.training.assets import prepare_world, resolve_embedder

    # config -> assets
    out.mkdir(parents=True, exist_ok=True)
    embedder = load_embedder(resolve_embedder(config.embedder, out))  # a bad spec fails before any rendering
    world = prepare_world(config.world, out, "world")
    held_out = prepare_world(config.eval_world, out, "eval_world")
    clip_seconds = config.eval_clip_seconds

    # data
    frames, captions = collect_pairs(world, config.frames_per_event, config.frame_max_side, config.seed)
    logger.info("%d frames, %d distinct captions", len(frames), len({c for f in captions for c in f}))
    before = retrieval_r1(embedder, held_out, out / "eval_cache", clip_seconds)

    # train, save
    tuned, losses = train_embedder(embedder, frames, captions, config, progress)
    path = tuned.save(out / "embedder")
    after = retrieval_r1(load_embedder(f"openclip:{path}"), held_out, out / "eval_cache", clip_seconds)
    result = ClipResult(
        Path(path), len(frames), before["caption"], after["caption"], losses, before["subject"], after["subject"]
    )
    (out / "metrics.json").write_text(json.dumps(result.summary(), indent=1))
    shutil.rmtree(out / "eval_cache", ignore_errors=True)
    return result
