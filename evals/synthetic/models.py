"""Factories for the tiny local models used by tests, smoke runs and `foveate synth models`."""

from __future__ import annotations

from pathlib import Path

from foveate.evals.synthetic.tiny_embedder import build_tiny_embedder


def build_tiny_controller(out_dir: str | Path) -> Path:
    """A tiny Qwen2.5-VL-architecture controller; see :mod:`evals.synthetic.tiny_controller`."""
    # Imported here so the embedder path works without the controller's dependencies.
    from foveate.evals.synthetic.tiny_controller import build_tiny_controller as build

    return build(out_dir)


def build_tiny_models(out: str | Path) -> dict[str, Path]:
    """Write ``out/embedder`` (for ``--embedder openclip:DIR``) and ``out/controller`` (for ``--controller``)."""
    out = Path(out)
    return {"embedder": build_tiny_embedder(out / "embedder"), "controller": build_tiny_controller(out / "controller")}


__all__ = ["build_tiny_controller", "build_tiny_embedder", "build_tiny_models"]
