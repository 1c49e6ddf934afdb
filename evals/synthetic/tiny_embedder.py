"""A tiny randomly initialised OpenCLIP model, saved as an ``openclip:DIR`` directory.

Same code path as a real model (open_clip's ``CLIP`` class, its bundled BPE tokenizer and its
preprocessing), small enough to build and run on a CPU in a second.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

TINY_CLIP_CFG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
# open_clip's ModifiedResNet (the RN50 family's tower: a conv stem, four bottleneck stages, attention
# pooling), one block per stage. Its convolutions see a sprite's outline at any position; the ViT's 16-pixel
# patches cut a 10-15 pixel sprite into pieces. Trained alike on 64 world videos, held-out retrieval by
# subject, top 1: ViT 0.60, ResNet 0.75 (80 queries; docs/results.md).
TINY_RESNET_VISION_CFG = {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "head_width": 32}
TOWERS = ("vit", "resnet")


def build_tiny_embedder(out_dir: str | Path, seed: int = 0, resize_mode: str = "squash", tower: str = "vit") -> Path:
    """Write a tiny OpenCLIP model (random weights from ``seed``) to ``out_dir``; returns ``out_dir``.

    ``resize_mode``: open_clip's preprocessing of a frame to the 64 x 64 input. ``"squash"`` (default) keeps
    the whole frame; ``"shortest"`` (open_clip's own default) crops off its sides, where the synthetic
    world's sprites enter and leave (docs/results.md, runs L8-L10, has what each does to retrieval).

    ``tower``: the image tower, ``"vit"`` (default) or ``"resnet"`` (:data:`TINY_RESNET_VISION_CFG`)."""
    import open_clip
    import torch
    from open_clip.transform import PreprocessCfg, image_transform_v2

    from foveate.memory.embedder import ClipEmbedder

    if tower not in TOWERS:
        raise ValueError(f"tower must be one of {TOWERS}, got {tower!r}")
    cfg = TINY_CLIP_CFG if tower == "vit" else {**TINY_CLIP_CFG, "vision_cfg": TINY_RESNET_VISION_CFG}
    torch.manual_seed(seed)
    model = open_clip.CLIP(**cfg)
    pp_cfg = asdict(PreprocessCfg(size=cfg["vision_cfg"]["image_size"], resize_mode=resize_mode))
    open_clip.model.set_model_preprocess_cfg(model, pp_cfg)
    preprocess = image_transform_v2(PreprocessCfg(**pp_cfg), is_train=False)
    tokenizer = open_clip.SimpleTokenizer(context_length=TINY_CLIP_CFG["text_cfg"]["context_length"])
    name = f"tiny(seed={seed})" if tower == "vit" else f"tiny-{tower}(seed={seed})"
    embedder = ClipEmbedder(name, model, preprocess, tokenizer, cfg, pp_cfg)
    return embedder.save(out_dir)
