"""Metrics: accuracy, temporal IoU of evidence, R@1 at IoU thresholds, cost; by task and duration; bootstrap CIs."""

from __future__ import annotations

import numpy as np

from agent.records import ManifestRow, PredictionRow

Span = tuple[float, float]
DURATION_BUCKETS = ((0, 300, "<5min"), (300, 1200, "5-20min"), (1200, 3600, "20-60min"), (3600, float("inf"), ">60min"))


def _union(spans: list[Span]) -> list[Span]:
    out: list[list[float]] = []
    for s, e in sorted((float(a), float(b)) for a, b in spans if b > a):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(a, b) for a, b in out]


def temporal_iou(pred: list[Span], gold: list[Span]) -> float:
    """IoU of the unions of two span sets; 0 when either is empty."""
    p, g = _union(pred), _union(gold)
    if not p or not g:
        return 0.0
    inter = sum(max(0.0, min(b, d) - max(a, c)) for a, b in p for c, d in g)
    total = sum(b - a for a, b in p) + sum(d - c for c, d in g) - inter
    return inter / total if total > 0 else 0.0


def bootstrap_ci(values: np.ndarray, n: int = 1000, seed: int = 0) -> tuple[float, float]:
    if len(values) == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(n, len(values)), replace=True).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _bucket(d: float | None) -> str:
    for lo, hi, name in DURATION_BUCKETS:
        if d is not None and lo <= d < hi:
            return name
    return "unknown"


def score(rows: list[ManifestRow], preds: dict[str, PredictionRow]) -> dict:
    """Per-row scores aggregated overall, by task and by duration bucket. Missing predictions count as wrong."""
    per = []
    for r in rows:
        p = preds.get(r.id)
        correct = bool(p and not p.error and r.answer is not None and (p.choice or p.answer.strip()).upper() == r.answer.upper()) if r.options \
            else bool(p and r.answer and p.answer.strip().lower() == r.answer.strip().lower())
        iou = temporal_iou(p.evidence if p else [], r.evidence or []) if r.evidence else None
        r1 = temporal_iou(p.evidence[:1], r.evidence) if (p and p.evidence and r.evidence) else 0.0
        per.append({"task": r.task or "all", "bucket": _bucket(r.duration_s), "correct": float(correct), "iou": iou, "r1": r1,
                    "frames": p.frames_used if p else 0, "tools": p.tool_calls if p else 0, "tokens": (p.tokens_in + p.tokens_out) if p else 0,
                    "latency": p.latency_s if p else 0.0, "error": bool(p is None or p.error)})
    return {"overall": _aggregate(per), "by_task": _group(per, "task"), "by_duration": _group(per, "bucket")}


def _group(per: list[dict], key: str) -> dict:
    return {k: _aggregate([x for x in per if x[key] == k]) for k in sorted({x[key] for x in per})}


def _aggregate(per: list[dict]) -> dict:
    if not per:
        return {"n": 0}
    acc = np.asarray([x["correct"] for x in per])
    ious = np.asarray([x["iou"] for x in per if x["iou"] is not None])
    r1 = np.asarray([x["r1"] for x in per if x["iou"] is not None])
    lo, hi = bootstrap_ci(acc)
    return {"n": len(per), "accuracy": float(acc.mean()), "accuracy_ci95": [lo, hi],
            "evidence_iou": float(ious.mean()) if len(ious) else None,
            **{f"r1@{t}": float((r1 >= t).mean()) if len(r1) else None for t in (0.3, 0.5, 0.7)},
            "frames_used": float(np.mean([x["frames"] for x in per])), "tool_calls": float(np.mean([x["tools"] for x in per])),
            "tokens": float(np.mean([x["tokens"] for x in per])), "latency_s": float(np.mean([x["latency"] for x in per])),
            "errors": int(sum(x["error"] for x in per))}
