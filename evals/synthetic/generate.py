"""Kept for existing imports: the world writer lives in :mod:`evals.synthetic.world`."""

from evals.synthetic.world import generate_world

__all__ = ["generate_world"]
