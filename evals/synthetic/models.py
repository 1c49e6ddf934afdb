"""Factories for tiny local models used by tests, smoke runs and `foveate synth models`."""

from __future__ import annotations

from pathlib import Path

from evals.synthetic.tiny_controller import build_tiny_controller
from evals.synthetic.tiny_embedder import build_tiny_embedder


def build_tiny_models(out: str | Path) -> dict[str, Path]:
    out = Path(out)
    return {"embedder": build_tiny_embedder(out / "embedder"), "controller": build_tiny_controller(out / "controller")}


__all__ = ["build_tiny_controller", "build_tiny_embedder", "build_tiny_models"]
