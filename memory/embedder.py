"""OpenCLIP clip embedder: images and texts into one L2-normalised space.

Specs: ``openclip:ARCH/PRETRAINED`` (open_clip's pretrained tags, downloaded on first use) or
``openclip:DIR`` (a directory with ``open_clip_config.json`` and ``open_clip_model.safetensors``,
open_clip's ``local-dir:`` layout, as written by :meth:`ClipEmbedder.save`).
"""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path

import numpy as np

from PIL import Image

import torch  # noqa: E402  (the embedder is the one memory module that needs torch)

from memory.errors import EmbedderError

logger = logging.getLogger(__name__)

DEFAULT_EMBEDDER = "openclip:ViT-B-32/laion2b_s34b_b79k"
CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
OFFLINE_HINT = ("point --embedder at a local model directory (openclip:DIR with open_clip_config.json and "
                "open_clip_model.safetensors), e.g. one written by `foveate synth models OUT` or `foveate train clip`")


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class ClipEmbedder:
    """Wraps an open_clip model, its preprocessing and tokenizer."""

    def __init__(self, spec: str, model: torch.nn.Module, preprocess, tokenizer, model_cfg: dict | None = None,
                 preprocess_cfg: dict | None = None) -> None:
        self.spec = spec
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.model_cfg = model_cfg
        self.preprocess_cfg = preprocess_cfg or {}
        self.device = next(model.parameters()).device
        self.dim = int(model_cfg["embed_dim"]) if model_cfg else int(self.embed_texts(["x"]).shape[1])

    def __repr__(self) -> str:
        return f"ClipEmbedder(spec={self.spec!r}, dim={self.dim}, device={self.device})"

    @torch.inference_mode()
    def embed_images(self, frames: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """``(N, H, W, 3) uint8`` -> ``(N, D) float32``, L2-normalised."""
        out = []
        for i in range(0, len(frames), batch_size):
            batch = torch.stack([self.preprocess(Image.fromarray(f)) for f in frames[i:i + batch_size]]).to(self.device)
            out.append(torch.nn.functional.normalize(self.model.encode_image(batch).float(), dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    @torch.inference_mode()
    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """``N`` strings -> ``(N, D) float32``, L2-normalised."""
        tokens = self.tokenizer(list(texts)).to(self.device)
        return torch.nn.functional.normalize(self.model.encode_text(tokens).float(), dim=-1).cpu().numpy()

    def save(self, directory: str | Path) -> Path:
        """Write an ``openclip:DIR`` directory that :func:`load_embedder` reads back."""
        from safetensors.torch import save_file

        if self.model_cfg is None:
            raise EmbedderError(f"{self.spec}: model config unknown, cannot save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_FILE).write_text(json.dumps({"model_cfg": self.model_cfg, "preprocess_cfg": self.preprocess_cfg}, indent=2))
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE))
        return directory


def _from_dir(spec: str, directory: Path) -> ClipEmbedder:
    import open_clip

    if not (directory / CONFIG_FILE).is_file() or not (directory / WEIGHTS_FILE).is_file():
        raise EmbedderError(f"{spec}: {directory} must hold {CONFIG_FILE} and {WEIGHTS_FILE}")
    cfg = json.loads((directory / CONFIG_FILE).read_text())
    name = f"local-dir:{directory}"
    model, _, preprocess = open_clip.create_model_and_transforms(name, device=_device())
    return ClipEmbedder(spec, model, preprocess, open_clip.get_tokenizer(name), cfg.get("model_cfg", cfg), cfg.get("preprocess_cfg"))


def _from_pretrained(spec: str, arch: str, tag: str) -> ClipEmbedder:
    import open_clip

    if arch not in open_clip.list_models():
        raise EmbedderError(f"{spec}: unknown OpenCLIP architecture {arch!r}")
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=tag, device=_device())
    except Exception as exc:  # download/offline/checksum failures surface as many types
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        why = "offline (HF_HUB_OFFLINE=1) and the weights are not cached" if offline else f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}"
        raise EmbedderError(f"{spec}: cannot load the weights ({why}); {OFFLINE_HINT}") from None
    return ClipEmbedder(spec, model, preprocess, open_clip.get_tokenizer(arch), open_clip.get_model_config(arch))


@functools.lru_cache(maxsize=4)
def load_embedder(spec: str = DEFAULT_EMBEDDER) -> ClipEmbedder:
    """Load (once per process) the embedder named by ``spec``."""
    if not spec.startswith("openclip:"):
        raise EmbedderError(f"{spec}: unknown embedder spec; use openclip:ARCH/PRETRAINED or openclip:DIR")
    rest = spec[len("openclip:"):]
    path = Path(rest).expanduser()
    if path.is_dir():
        return _from_dir(spec, path.resolve())
    if "/" in rest and not rest.startswith((".", "/", "~")) and rest.count("/") == 1:
        arch, tag = rest.split("/")
        return _from_pretrained(spec, arch, tag)
    raise EmbedderError(f"{spec}: no such directory {path}; {OFFLINE_HINT}")
