"""Learning-rate multipliers shared by the training loops (pretraining, the clip embedder)."""

from __future__ import annotations

import math


def warmup_cosine(
    step: int, warmup: int, decay_from: int, decay_to: int, floor: float = 0.0, decay: bool = True
) -> float:
    """The multiple of the peak rate at ``step`` (0-based): a linear ramp over the first ``warmup``
    steps, then the peak until ``decay_from``, then (with ``decay``) a cosine from 1 down to ``floor``
    reached at ``decay_to`` and held after it."""
    if step < warmup:
        return (step + 1) / warmup
    if not decay:
        return 1.0
    done = min(1.0, max(0.0, (step - decay_from) / max(1, decay_to - decay_from)))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * done))
