"""OpenCLIP clip embedder: frames and texts into one L2-normalised space.

Specs: ``openclip:ARCH/PRETRAINED`` (an open_clip architecture and pretrained tag, downloaded
on first use) or ``openclip:DIR`` (a directory holding ``open_clip_config.json`` with
``{"model_cfg": ..., "preprocess_cfg": ...}`` and ``open_clip_model.safetensors``: open_clip's
hf-hub layout, loaded through its ``local-dir:`` schema and written by :meth:`ClipEmbedder.save`).

torch and open_clip are imported on first use, so reading ``DEFAULT_EMBEDDER`` or a spec's
cache key stays cheap. A directory's model is built without storage and only its image tower is
read at load; the text tower is read on the first text query (or the first use of ``.model``), so
indexing video never holds it (about 250 MB for ViT-B-32).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from foveate.memory.atomic import atomic_path, write_atomic
from foveate.memory.errors import EmbedderError

logger = logging.getLogger(__name__)

PREFIX = "openclip:"
DEFAULT_EMBEDDER = "openclip:ViT-B-32/laion2b_s34b_b79k"
CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
OFFLINE_HINT = (
    "point at a local model with --embedder openclip:DIR (a folder with open_clip_config.json and "
    "open_clip_model.safetensors), e.g. one written by `foveate synth models OUT` (OUT/embedder)"
)

_LOADED: dict[tuple, ClipEmbedder] = {}
_LOAD_LOCK = threading.Lock()


def _device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _lean_cpu_process() -> None:
    """On a machine without a GPU, before open_clip is first imported: keep what cannot run there out
    of memory, and let glibc return freed buffers. ViT-B-32 indexing peaks about 150 MB lower.

    - triton (GPU kernels only) is kept from being imported: torchvision's import pulls in
      ``torch._dynamo``, which loads triton when it is installed (76 MB). Nothing on a CPU runs it,
      and code that asks for it sees it as absent. Left alone once something has imported it.
    - glibc: at most 2 malloc arenas (decoder, torch and main threads each keep freed memory in
      their own), and buffers of 256 KB and up always mapped, so a freed frame or activation goes
      back to the system instead of staying in the heap.
    """
    import ctypes
    import sys

    import torch

    if torch.cuda.is_available() or "open_clip" in sys.modules:
        return
    sys.modules.setdefault("triton", None)
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return
    m_mmap_threshold, m_arena_max = -3, -8
    libc.mallopt(m_arena_max, 2)
    libc.mallopt(m_mmap_threshold, 256 * 1024)


class ClipEmbedder:
    """An open_clip model with its image preprocessing and tokenizer.

    ``.model``, ``.preprocess`` and ``.tokenizer`` are exposed for fine-tuning; ``.save(dir)``
    writes an ``openclip:DIR`` directory. ``weights``: the safetensors file that the model's
    parameters still on the ``meta`` device are read from when first needed (see :func:`_from_dir`).
    ``tokenizer`` may be a zero-argument function that makes it, called on the first text.
    """

    def __init__(
        self,
        spec: str,
        model: Any,
        preprocess: Any,
        tokenizer: Any,
        model_cfg: dict | None = None,
        preprocess_cfg: dict | None = None,
        weights: Path | None = None,
    ) -> None:
        from open_clip import get_model_preprocess_cfg

        self.spec = spec
        self._model = model.eval()
        self._weights = weights
        self._materialise_lock = threading.Lock()
        self.preprocess = preprocess
        self._tokenizer = tokenizer
        self.model_cfg = model_cfg
        self.preprocess_cfg = dict(preprocess_cfg or get_model_preprocess_cfg(model) or {})
        self.device = next(p.device for p in model.parameters() if not p.is_meta)
        self.dim = (
            int(model_cfg["embed_dim"])
            if model_cfg and "embed_dim" in model_cfg
            else int(self.embed_texts(["x"]).shape[1])
        )

    def __repr__(self) -> str:
        return f"ClipEmbedder(spec={self.spec!r}, dim={self.dim}, device={self.device})"

    @property
    def tokenizer(self) -> Any:
        """open_clip's tokenizer for this model (made on first use when the loader deferred it)."""
        if isinstance(self._tokenizer, _Deferred):
            with self._materialise_lock:
                if isinstance(self._tokenizer, _Deferred):
                    self._tokenizer = self._tokenizer.make()
        return self._tokenizer

    @property
    def batch_size(self) -> int:
        """Frames per forward pass by default: 64 on a GPU, 8 on the CPU (as fast there as 64, with about
        200 MB less peak memory for ViT-B-32)."""
        return 8 if self.device.type == "cpu" else 64

    @property
    def model(self) -> Any:
        """The whole open_clip model, every tower read (text queries, fine-tuning, saving)."""
        if self._weights is not None:
            with self._materialise_lock:
                if self._weights is not None:
                    materialise(self._model, self._weights, self.device)
                    self._weights = None
        return self._model

    def embed_images(self, frames: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """``(N, H, W, 3) uint8`` RGB frames -> ``(N, D) float32``, L2-normalised.

        ``batch_size``: frames per forward pass (default :attr:`batch_size`).
        """
        import torch

        batch_size = batch_size or self.batch_size
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"embed_images expects (N, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
        out = []
        with torch.inference_mode():
            for i in range(0, len(frames), batch_size):
                batch = torch.stack([self.preprocess(Image.fromarray(f)) for f in frames[i : i + batch_size]]).to(
                    self.device
                )
                feats = self._model.encode_image(batch).float()
                out.append(torch.nn.functional.normalize(feats, dim=-1).cpu().numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)

    def embed_texts(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        """``N`` strings -> ``(N, D) float32``, L2-normalised."""
        import torch

        texts = [str(t) for t in texts]
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                tokens = self.tokenizer(texts[i : i + batch_size]).to(self.device)
                out.append(torch.nn.functional.normalize(self.model.encode_text(tokens).float(), dim=-1).cpu().numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, getattr(self, "dim", 0)), np.float32)

    def save(self, directory: str | Path) -> Path:
        """Write an ``openclip:DIR`` directory (config JSON + safetensors) that :func:`load_embedder` reads."""
        from safetensors.torch import save_file

        if self.model_cfg is None:
            raise EmbedderError(f"{self.spec}: model config unknown, cannot save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {"model_cfg": self.model_cfg, "preprocess_cfg": _jsonable(self.preprocess_cfg)}
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        with atomic_path(directory / WEIGHTS_FILE) as tmp:
            save_file(state, str(tmp))
        write_atomic(directory / CONFIG_FILE, json.dumps(config, indent=2))
        return directory


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def parse_spec(spec: str) -> tuple[str, Any]:
    """``("dir", Path)`` or ``("pretrained", (arch, tag))``; raises EmbedderError on a malformed spec."""
    if not isinstance(spec, str) or not spec.startswith(PREFIX) or len(spec) == len(PREFIX):
        raise EmbedderError(f"{spec}: unknown embedder spec; use openclip:ARCH/PRETRAINED or openclip:DIR")
    rest = spec[len(PREFIX) :]
    path = Path(rest).expanduser()
    if path.is_dir():
        return "dir", path.resolve()
    looks_like_path = rest.startswith((".", "/", "~")) or rest.count("/") != 1
    if looks_like_path:
        raise EmbedderError(f"{spec}: no such model directory {path}; {OFFLINE_HINT}")
    arch, tag = rest.split("/")
    return "pretrained", (arch, tag)


def embedder_cache_key(spec: str) -> dict:
    """What the clip index depends on: the spec and, for a directory, its weights' size and mtime.

    A model re-saved into the same directory (fine-tuning) therefore invalidates cached indexes.
    """
    kind, value = parse_spec(spec)
    if kind == "dir":
        st = (value / WEIGHTS_FILE).stat() if (value / WEIGHTS_FILE).exists() else None
        return {"spec": f"{PREFIX}{value}", "weights": [st.st_size, st.st_mtime_ns] if st else None}
    return {"spec": spec}


def _offline() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:
        return False


def _cached_on_hub(hf_hub: str) -> bool:
    """Whether open_clip's hub weights for this tag are already in the local Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache

    model_id, filename = os.path.split(hf_hub)
    names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    if filename.endswith(".bin"):
        names.insert(0, filename[:-4] + ".safetensors")
    return any(isinstance(try_to_load_from_cache(model_id, n), str) for n in names)


def _from_dir(spec: str, directory: Path) -> ClipEmbedder:
    import open_clip

    missing = [n for n in (CONFIG_FILE, WEIGHTS_FILE) if not (directory / n).is_file()]
    if missing:
        raise EmbedderError(f"{spec}: {directory} lacks {' and '.join(missing)} (not an openclip:DIR model folder)")
    try:
        cfg = json.loads((directory / CONFIG_FILE).read_text())
        name = f"local-dir:{directory}"
        weights, device = directory / WEIGHTS_FILE, _device()
        # Built without storage for its parameters (no random init to overwrite), then the image
        # tower is read straight from the file: open_clip's own loading holds a second full copy of
        # the weights (about 600 MB more peak memory for ViT-B-32). The rest waits for a text query.
        with _quiet_random_init(), parameters_on_meta():
            model, _, preprocess = open_clip.create_model_and_transforms(name, load_weights=False, device=None)
        lazy = materialise(model, weights, device, lambda key: key.startswith("visual."))
        if not lazy:  # not this model's exact tensors: open_clip loads it, with its conversions
            materialise(model, None, device)
            open_clip.load_checkpoint(model, str(weights))
        tokenizer = _Deferred(lambda: open_clip.get_tokenizer(name))  # its BPE tables: ~20 MB, for text only
    except Exception as exc:  # malformed JSON, missing keys, mismatched weights all surface differently
        raise EmbedderError(
            f"{spec}: cannot load the model in {directory} ({exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0][:200] if str(exc) else ''})"
        ) from None
    return ClipEmbedder(
        spec, model, preprocess, tokenizer, cfg.get("model_cfg"), cfg.get("preprocess_cfg"), weights if lazy else None
    )


@dataclass(frozen=True)
class _Deferred:
    make: Callable[[], Any]


class _quiet_random_init(contextlib.ContextDecorator):
    """Drops open_clip's "initialized randomly" warning while a model is built to be loaded right after."""

    @staticmethod
    def filter(record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()

    def __enter__(self):
        logging.getLogger().addFilter(self.filter)
        return self

    def __exit__(self, *exc):
        logging.getLogger().removeFilter(self.filter)
        return False


_SAFETENSORS_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64", "I64": "int64"}


@contextlib.contextmanager
def parameters_on_meta():
    """Modules built inside get their parameters on the ``meta`` device (no storage, no init); buffers
    stay real, so a module's computed buffers (an attention mask) keep their values."""
    import torch

    register = torch.nn.Module.register_parameter

    def on_meta(module, name, param):
        if param is not None and not param.is_meta:
            param = torch.nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register(module, name, param)

    torch.nn.Module.register_parameter = on_meta
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = register


def materialise(model: Any, path: Path | None, device: Any, wanted: Any = None) -> bool:
    """Give the ``meta`` parameters whose names pass ``wanted`` (all if None) storage on ``device``, and
    read their values from the safetensors file at ``path`` (:func:`load_in_place`); with ``path``
    None they are left uninitialised for the caller to fill. Buffers are moved to ``device``.

    False, with nothing changed, when the file's tensors are not exactly the model's.
    """
    import torch

    names = [n for n, p in model.named_parameters() if p.is_meta and (wanted is None or wanted(n))]
    if path is not None and not load_in_place(model, path, only=set(), check_only=True):
        return False
    for name in names:
        owner_name, _, attr = name.rpartition(".")
        owner = model.get_submodule(owner_name)
        param = owner._parameters[attr]
        owner._parameters[attr] = torch.nn.Parameter(
            torch.empty_like(param, device=device), requires_grad=param.requires_grad
        )
    for owner in model.modules():
        for attr, buf in owner._buffers.items():
            if buf is not None and buf.device != torch.device(device):
                owner._buffers[attr] = buf.to(device)
    if path is not None:
        persistent = set(model.state_dict(keep_vars=True)) - {n for n, _ in model.named_parameters()}
        load_in_place(model, path, only={*names, *(n for n in persistent if wanted is None or wanted(n))})
    return True


def load_in_place(model: Any, path: Path, only: set[str] | None = None, check_only: bool = False) -> bool:
    """Read a safetensors file straight into ``model``'s parameters and buffers, one tensor at a time
    (only the names in ``only`` when given; nothing with ``check_only``).

    False (nothing written) when the file's tensors are not exactly the model's (names, shapes,
    known dtypes): the caller then loads it the usual way, with its conversions.
    """
    import torch

    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        header.pop("__metadata__", None)
        state = model.state_dict(keep_vars=True)
        if set(header) != set(state) or any(
            list(state[k].shape) != v["shape"] or v["dtype"] not in _SAFETENSORS_DTYPES for k, v in header.items()
        ):
            return False
        if check_only:
            return True
        with torch.no_grad():
            for key, meta in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
                if only is not None and key not in only:
                    continue
                start, end = meta["data_offsets"]
                f.seek(8 + size + start)
                target, dtype = state[key].data, getattr(torch, _SAFETENSORS_DTYPES[meta["dtype"]])
                if target.dtype == dtype and target.is_contiguous() and target.device.type == "cpu":
                    f.readinto(memoryview(target.reshape(-1).view(torch.uint8).numpy()))
                else:
                    target.copy_(torch.frombuffer(bytearray(f.read(end - start)), dtype=dtype).reshape(target.shape))
    return True


def _from_pretrained(spec: str, arch: str, tag: str) -> ClipEmbedder:
    import open_clip

    if arch not in open_clip.list_models():
        raise EmbedderError(f"{spec}: unknown OpenCLIP architecture {arch!r} (see open_clip.list_models())")
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if tag not in tags:
        raise EmbedderError(f"{spec}: unknown pretrained tag {tag!r} for {arch}; valid: {', '.join(tags) or 'none'}")
    hub = open_clip.get_pretrained_cfg(arch, tag).get("hf_hub", "")
    if _offline() and hub and not _cached_on_hub(hub):
        raise EmbedderError(f"{spec}: weights are not cached and HF_HUB_OFFLINE is set; {OFFLINE_HINT}")
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=tag, device=_device())
    except Exception as exc:  # download, offline and checksum failures surface as many types
        why = f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        raise EmbedderError(f"{spec}: cannot load the weights ({why}); {OFFLINE_HINT}") from None
    return ClipEmbedder(spec, model, preprocess, open_clip.get_tokenizer(arch), open_clip.get_model_config(arch))


def check_embedder(spec: str = DEFAULT_EMBEDDER) -> None:
    """Raise EmbedderError (one line) when ``spec`` cannot be loaded here, without loading it: a folder
    that lacks the model's files, or hub weights that are not cached while the hub is off or unreachable."""
    from foveate.memory.hub import hub_usable

    kind, value = parse_spec(spec)
    if kind == "dir":
        missing = [n for n in (CONFIG_FILE, WEIGHTS_FILE) if not (value / n).is_file()]
        if missing:
            raise EmbedderError(f"{spec}: {value} lacks {' and '.join(missing)} (not an openclip:DIR model folder)")
        return
    import open_clip

    arch, tag = value
    if arch not in open_clip.list_models():
        raise EmbedderError(f"{spec}: unknown OpenCLIP architecture {arch!r} (see open_clip.list_models())")
    if tag not in open_clip.list_pretrained_tags_by_model(arch):
        raise EmbedderError(f"{spec}: unknown pretrained tag {tag!r} for {arch}")
    hub = open_clip.get_pretrained_cfg(arch, tag).get("hf_hub", "")
    if hub and not _cached_on_hub(hub) and not hub_usable():
        why = "HF_HUB_OFFLINE is set" if _offline() else "the Hugging Face hub is unreachable"
        raise EmbedderError(f"{spec}: the weights are not in the local cache and {why}; {OFFLINE_HINT}")


def load_embedder(spec: str = DEFAULT_EMBEDDER) -> ClipEmbedder:
    """Load the embedder named by ``spec``, once per process (a directory re-saved since is reloaded)."""
    key = json.dumps(embedder_cache_key(spec), sort_keys=True)
    with _LOAD_LOCK:
        if key not in _LOADED:
            kind, value = parse_spec(spec)
            logger.info("loading embedder %s", spec)
            _lean_cpu_process()
            _LOADED[key] = _from_dir(spec, value) if kind == "dir" else _from_pretrained(spec, *value)
        return _LOADED[key]
