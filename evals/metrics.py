"""Metrics over a manifest and one policy's predictions.

Per question: correctness (option letter for multiple choice, normalised exact match for open
answers), temporal IoU of the predicted evidence (union of spans) with the true evidence (union),
the IoU of the first predicted span alone (for R@1 at IoU 0.3/0.5/0.7), frames used, tool
calls, tokens and latency. Aggregates: overall, by task and by duration bucket, with seeded
bootstrap 95% confidence intervals. A question without a prediction counts as wrong (and as
``missing``); a prediction with an ``error`` counts as wrong (and as an ``error``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from foveate.agent.answer import chosen_letter, normalize_answer
from foveate.agent.records import ManifestRow, PredictionRow

Span = tuple[float, float]
IOU_THRESHOLDS = (0.3, 0.5, 0.7)
DURATION_BUCKETS = (
    (0.0, 300.0, "<5min"),
    (300.0, 1200.0, "5-20min"),
    (1200.0, 3600.0, "20-60min"),
    (3600.0, float("inf"), ">60min"),
)
BUCKET_ORDER = [b[2] for b in DURATION_BUCKETS] + ["unknown"]


def overlaps(a: Span, b: Span) -> bool:
    """Whether two half-open spans share some time (touching ends do not)."""
    return a[0] < b[1] and b[0] < a[1]


def union(spans: list[Span]) -> list[Span]:
    """Sorted, merged half-open spans; empty and reversed spans are dropped."""
    out: list[list[float]] = []
    for s, e in sorted((float(a), float(b)) for a, b in spans if float(b) > float(a)):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(a, b) for a, b in out]


def temporal_iou(pred: list[Span], gold: list[Span]) -> float:
    """IoU of the unions of two span sets, in [0, 1]; 0 when either is empty."""
    p, g = union(pred), union(gold)
    if not p or not g:
        return 0.0
    inter = sum(max(0.0, min(b, d) - max(a, c)) for a, b in p for c, d in g)
    total = sum(b - a for a, b in p) + sum(d - c for c, d in g) - inter
    return inter / total if total > 0 else 0.0


def predicted_letter(pred: PredictionRow, options: list[str]) -> str | None:
    """The option a prediction picked: its ``choice``, else a bare letter or an option's text in ``answer``
    (the rule the agent and the rewards use, ``foveate.agent.answer.chosen_letter``)."""
    return chosen_letter(pred.choice, pred.answer, options)


def is_correct(row: ManifestRow, pred: PredictionRow | None) -> bool:
    if pred is None or pred.error or row.answer is None:
        return False
    if row.options:
        return predicted_letter(pred, row.options) == row.answer.strip().upper()[:1]
    return normalize_answer(pred.answer) == normalize_answer(row.answer)


def duration_bucket(seconds: float | None) -> str:
    for lo, hi, label in DURATION_BUCKETS:
        if seconds is not None and lo <= seconds < hi:
            return label
    return "unknown"


@dataclass
class RowScore:
    """One question's scores; ``iou``/``iou_first`` are None when the question has no true evidence."""

    id: str
    task: str
    bucket: str
    correct: bool
    iou: float | None
    iou_first: float | None
    missing: bool
    error: bool
    frames_used: int
    tool_calls: int
    tokens: int
    latency_s: float


def score_row(row: ManifestRow, pred: PredictionRow | None) -> RowScore:
    gold = list(row.evidence or [])
    spans = list(pred.evidence) if pred is not None and not pred.error else []
    return RowScore(
        id=row.id,
        task=row.task or "all",
        bucket=duration_bucket(row.duration_s),
        correct=is_correct(row, pred),
        iou=temporal_iou(spans, gold) if gold else None,
        iou_first=temporal_iou(spans[:1], gold) if gold else None,
        missing=pred is None,
        error=bool(pred is not None and pred.error),
        frames_used=pred.frames_used if pred else 0,
        tool_calls=pred.tool_calls if pred else 0,
        tokens=(pred.tokens_in + pred.tokens_out) if pred else 0,
        latency_s=pred.latency_s if pred else 0.0,
    )


def bootstrap_ci(values, n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean; None for no values. Same seed, same interval.

    Resamples are drawn 1,000 at a time, so memory stays ``1000 * len(values)`` whatever ``n_resamples``.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return None
    rng = np.random.default_rng(seed)
    chunks = [min(1000, n_resamples - i) for i in range(0, n_resamples, 1000)]
    means = np.concatenate([x[rng.integers(0, x.size, size=(k, x.size))].mean(axis=1) for k in chunks])
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def aggregate(scores: list[RowScore], seed: int = 0) -> dict:
    """Accuracy (with CI), evidence IoU (with CI), R@1 at IoU thresholds, mean cost of answered rows, counts."""
    if not scores:
        return {"n": 0}
    acc = [float(s.correct) for s in scores]
    ious = [s.iou for s in scores if s.iou is not None]
    firsts = [s.iou_first for s in scores if s.iou_first is not None]
    answered = [s for s in scores if not s.missing]
    ci = bootstrap_ci(acc, seed=seed)
    iou_ci = bootstrap_ci(ious, seed=seed)
    return {
        "n": len(scores),
        "accuracy": float(np.mean(acc)),
        "accuracy_ci95": list(ci) if ci else None,
        "evidence_iou": _mean(ious),
        "evidence_iou_ci95": list(iou_ci) if iou_ci else None,
        "n_with_evidence": len(ious),
        **{f"r1@{t}": _mean([float(v >= t) for v in firsts]) for t in IOU_THRESHOLDS},
        "frames_used": _mean([s.frames_used for s in answered]),
        "tool_calls": _mean([s.tool_calls for s in answered]),
        "tokens": _mean([s.tokens for s in answered]),
        "latency_s": _mean([s.latency_s for s in answered]),
        "missing": sum(s.missing for s in scores),
        "errors": sum(s.error or s.missing for s in scores),
        "error_rows": sum(s.error for s in scores),
    }


def _group(scores: list[RowScore], key: str, order: list[str] | None = None, seed: int = 0) -> dict:
    keys = sorted(
        {getattr(s, key) for s in scores},
        key=lambda k: (order.index(k) if order and k in order else len(order or []), k),
    )
    return {k: aggregate([s for s in scores if getattr(s, key) == k], seed) for k in keys}


def score(rows: list[ManifestRow], preds: dict[str, PredictionRow], seed: int = 0) -> dict:
    """Overall, by task and by duration bucket. ``errors`` counts failed plus missing rows."""
    scores = [score_row(r, preds.get(r.id)) for r in rows]
    return {
        "overall": aggregate(scores, seed),
        "by_task": _group(scores, "task", seed=seed),
        "by_duration": _group(scores, "bucket", BUCKET_ORDER, seed),
        "rows": scores,
    }


PAIRED_RESAMPLES = 10_000


def paired(scores: list[RowScore], against: list[RowScore], seed: int = 0) -> dict:
    """``scores`` minus ``against`` on the same questions (same manifest order): the mean difference in
    accuracy and in evidence IoU, each with a 95% bootstrap interval of the per-question differences
    (10,000 resamples of the questions, so the two policies are resampled together), and the questions
    one answers right and the other wrong (``won`` / ``lost``)."""
    if [s.id for s in scores] != [s.id for s in against]:
        raise ValueError("paired scores must cover the same questions in the same order")
    acc = [float(a.correct) - float(b.correct) for a, b in zip(scores, against)]
    iou = [a.iou - b.iou for a, b in zip(scores, against) if a.iou is not None and b.iou is not None]
    acc_ci = bootstrap_ci(acc, PAIRED_RESAMPLES, seed)
    iou_ci = bootstrap_ci(iou, PAIRED_RESAMPLES, seed)
    return {
        "n": len(acc),
        "accuracy_diff": _mean(acc),
        "accuracy_diff_ci95": list(acc_ci) if acc_ci else None,
        "won": sum(a.correct and not b.correct for a, b in zip(scores, against)),
        "lost": sum(b.correct and not a.correct for a, b in zip(scores, against)),
        "evidence_iou_diff": _mean(iou),
        "evidence_iou_diff_ci95": list(iou_ci) if iou_ci else None,
    }
