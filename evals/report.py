"""`foveate eval` reports: metrics.json, report.md, and PNG plots, several policies side by side."""

from __future__ import annotations

import json
from pathlib import Path

from agent.records import ManifestRow, iter_predictions
from evals.metrics import score, temporal_iou


def evaluate(rows: list[ManifestRow], pred_paths: list[Path]) -> dict:
    results = {}
    for path in pred_paths:
        preds = {p.id: p for p in iter_predictions(path)}
        name = next((p.policy for p in preds.values() if p.policy), None) or path.stem
        if name in results:
            name = f"{name} ({path.stem})"
        results[name] = score(rows, preds) | {"_ious": [temporal_iou(preds[r.id].evidence, r.evidence or []) for r in rows if r.id in preds and r.evidence]}
    return results


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def write_report(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    clean = {k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")} for k, v in results.items()}
    (out / "metrics.json").write_text(json.dumps(clean, indent=2))
    names = list(results)
    keys = ["n", "accuracy", "evidence_iou", "r1@0.3", "r1@0.5", "r1@0.7", "frames_used", "tool_calls", "tokens", "latency_s", "errors"]
    lines = ["# Evaluation report", "", "## Overall", "", "| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    lines += [f"| {k} | " + " | ".join(_fmt(results[n]["overall"].get(k)) for n in names) + " |" for k in keys]
    lines += [f"| accuracy 95% CI | " + " | ".join("[{:.2f}, {:.2f}]".format(*results[n]["overall"]["accuracy_ci95"]) for n in names) + " |"]
    for group in ("by_task", "by_duration"):
        cats = sorted({c for n in names for c in results[n][group]})
        lines += ["", f"## Accuracy {group.replace('_', ' ')}", "", "| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        lines += [f"| {c} | " + " | ".join(_fmt(results[n][group].get(c, {}).get("accuracy")) for n in names) + " |" for c in cats]
    lines += ["", "![accuracy by task](accuracy_by_task.png)", "![accuracy vs frames](accuracy_vs_frames.png)", "![evidence IoU](evidence_iou.png)"]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    tasks = sorted({c for n in names for c in results[n]["by_task"]})
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(1, len(names))
    for j, n in enumerate(names):
        ax.bar([i + j * width for i in range(len(tasks))], [results[n]["by_task"].get(t, {}).get("accuracy", 0) for t in tasks], width, label=n)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(tasks))], tasks)
    ax.set_ylabel("accuracy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "accuracy_by_task.png")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 4))
    for n in names:
        ax.scatter(results[n]["overall"]["frames_used"], results[n]["overall"]["accuracy"], label=n)
    ax.set_xlabel("mean frames used")
    ax.set_ylabel("accuracy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_frames.png")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.hist([results[n]["_ious"] for n in names], bins=10, range=(0, 1), label=names)
    ax.set_xlabel("evidence temporal IoU")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "evidence_iou.png")
    plt.close(fig)
