"""A tiny randomly initialised OpenCLIP model, saved as an ``openclip:DIR`` directory."""

from __future__ import annotations

from pathlib import Path

import torch

TINY_CLIP_CFG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
TINY_PREPROCESS_CFG = {"size": 64, "mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]}


def build_tiny_embedder(out_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny OpenCLIP model (random weights, open_clip's bundled BPE tokenizer) to ``out_dir``."""
    import open_clip

    from memory.embedder import ClipEmbedder

    torch.manual_seed(seed)
    model = open_clip.CLIP(**TINY_CLIP_CFG)
    preprocess = open_clip.image_transform(64, is_train=False, mean=TINY_PREPROCESS_CFG["mean"], std=TINY_PREPROCESS_CFG["std"])
    embedder = ClipEmbedder("tiny", model, preprocess, open_clip.get_tokenizer("ViT-B-32"), TINY_CLIP_CFG, TINY_PREPROCESS_CFG)
    return embedder.save(out_dir)
