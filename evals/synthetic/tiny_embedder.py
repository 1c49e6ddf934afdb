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


def build_tiny_embedder(out_dir: str | Path, seed: int = 0, resize_mode: str = "squash") -> Path:
    """Write a tiny OpenCLIP model (random weights from ``seed``) to ``out_dir``; returns ``out_dir``.

    ``resize_mode``: open_clip's preprocessing of a frame to the 64 x 64 input. ``"squash"`` (default) keeps
    the whole frame; ``"shortest"`` (open_clip's own default) crops off its sides, where the synthetic
    world's sprites enter and leave (docs/results.md, runs L8-L10, has what each does to retrieval)."""
    import open_clip
    import torch
    from open_clip.transform import PreprocessCfg, image_transform_v2

    from foveate.memory.embedder import ClipEmbedder

    torch.manual_seed(seed)
    model = open_clip.CLIP(**TINY_CLIP_CFG)
    pp_cfg = asdict(PreprocessCfg(size=TINY_CLIP_CFG["vision_cfg"]["image_size"], resize_mode=resize_mode))
    open_clip.model.set_model_preprocess_cfg(model, pp_cfg)
    preprocess = image_transform_v2(PreprocessCfg(**pp_cfg), is_train=False)
    tokenizer = open_clip.SimpleTokenizer(context_length=TINY_CLIP_CFG["text_cfg"]["context_length"])
    embedder = ClipEmbedder(f"tiny(seed={seed})", model, preprocess, tokenizer, TINY_CLIP_CFG, pp_cfg)
    return embedder.save(out_dir)
