"""Evaluation reports: several prediction files scored side by side against one manifest.

``evaluate`` scores each file (one policy each: named by the rows' ``policy`` field, else the
file name); ``write_report`` writes ``metrics.json``, ``report.md`` (overall, by task and by
duration tables, one column per policy) and three PNG plots: accuracy by task, accuracy vs
mean frames used, and the distribution of evidence IoU. With ``against``, every other policy is
also compared with that one question by question (:func:`foveate.evals.metrics.paired`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

from foveate.agent.records import ManifestRow, PredictionRow
from foveate.evals.metrics import PAIRED_RESAMPLES, paired, score

logger = logging.getLogger(__name__)

OVERALL_KEYS = (
    "n",
    "accuracy",
    "evidence_iou",
    "r1@0.3",
    "r1@0.5",
    "r1@0.7",
    "frames_used",
    "tool_calls",
    "tokens",
    "latency_s",
    "missing",
    "error_rows",
)
PLOTS = ("accuracy_by_task.png", "accuracy_vs_frames.png", "evidence_iou.png")


class UnknownPolicy(ValueError):
    """``evaluate(..., against=NAME)`` where no policy is NAME."""


def read_predictions(path: Path) -> tuple[dict[str, PredictionRow], int, int]:
    """Rows by id, the number of unreadable lines and the number of ids with several rows.

    The LAST row of an id counts: ``foveate batch`` appends, and a rerun appends a retry of a failed
    row after it. Raises ValueError naming the file when nothing in it is a prediction row.
    """
    preds: dict[str, PredictionRow] = {}
    bad = 0
    repeated: set[str] = set()
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    for line in lines:
        try:
            p = PredictionRow.model_validate_json(line)
        except ValueError:
            bad += 1
            continue
        if p.id in preds:
            repeated.add(p.id)
        preds[p.id] = p
    if lines and not preds:
        raise ValueError(f"{path}: no line is a prediction row (expected JSONL with 'id', 'answer', ...)")
    return preds, bad, len(repeated)


def policy_name(path: Path, preds: dict[str, PredictionRow], taken: set[str]) -> str:
    names = {p.policy for p in preds.values() if p.policy}
    name = names.pop() if len(names) == 1 else path.stem
    return (
        name if name not in taken else f"{name} ({path.stem})" if f"{name} ({path.stem})" not in taken else str(path)
    )


def evaluate(rows: list[ManifestRow], pred_paths: list[Path], seed: int = 0, against: str | None = None) -> dict:
    """``{policy: score(...) + {"file", "unknown_ids", "bad_lines", "repeated_ids"}}`` in the order of
    ``pred_paths``; ``repeated_ids`` counts ids with several rows (the last one counts).

    ``against`` names one policy (its name or its file's stem): every other policy gets ``"paired"``,
    its differences from that one on the same questions. UnknownPolicy when no policy has that name.
    """
    ids = {r.id for r in rows}
    results: dict[str, dict] = {}
    for path in pred_paths:
        path = Path(path)
        preds, bad, repeated = read_predictions(path)
        unknown = sorted(set(preds) - ids)
        if unknown:
            logger.warning("%s: %d prediction ids are not in the manifest (e.g. %s)", path, len(unknown), unknown[0])
        name = policy_name(path, preds, set(results))
        results[name] = score(rows, preds, seed) | {
            "file": str(path),
            "unknown_ids": len(unknown),
            "bad_lines": bad,
            "repeated_ids": repeated,
        }
    if against is not None:
        ref = next((n for n, r in results.items() if against in (n, Path(r["file"]).stem)), None)
        if ref is None:
            raise UnknownPolicy(f"--against {against}: no such policy (policies: {', '.join(results)})")
        for name, res in results.items():
            if name != ref:
                res["paired"] = {"against": ref} | paired(res["rows"], results[ref]["rows"], seed)
    return results


def metrics_json(results: dict) -> dict:
    """What metrics.json holds: everything but the per-row scores."""
    return {name: {k: v for k, v in res.items() if k != "rows"} for name, res in results.items()}


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _signed(v) -> str:
    return "-" if v is None else f"{v:+.3f}"


def _ci(v, signed: bool = False) -> str:
    if not v:
        return "-"
    return f"[{v[0]:+.3f}, {v[1]:+.3f}]" if signed else f"[{v[0]:.2f}, {v[1]:.2f}]"


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in body]


def markdown(results: dict, manifest: str = "") -> str:
    names = list(results)
    lines = ["# Evaluation report", ""]
    if manifest:
        lines += [
            f"Manifest: `{manifest}`; predictions: " + ", ".join(f"`{results[n]['file']}` ({n})" for n in names),
            "",
        ]
    lines += ["## Overall", ""]
    body = [[k] + [_fmt(results[n]["overall"].get(k)) for n in names] for k in OVERALL_KEYS]
    body.insert(2, ["accuracy 95% CI"] + [_ci(results[n]["overall"].get("accuracy_ci95")) for n in names])
    body.insert(4, ["evidence IoU 95% CI"] + [_ci(results[n]["overall"].get("evidence_iou_ci95")) for n in names])
    lines += _table(["metric"] + names, body)
    compared = [n for n in names if "paired" in results[n]]
    if compared:
        ref = results[compared[0]]["paired"]["against"]
        lines += ["", f"## Paired against {ref}", ""]
        lines += [
            f"Each policy minus {ref} on the same questions; 95% bootstrap intervals of the per-question "
            f"differences ({PAIRED_RESAMPLES:,} resamples). Won / lost: questions answered right by one of the "
            "two only.",
            "",
        ]
        body = []
        for n in compared:
            d = results[n]["paired"]
            body.append(
                [
                    n,
                    _signed(d["accuracy_diff"]) + " " + _ci(d["accuracy_diff_ci95"], signed=True),
                    f"{d['won']} / {d['lost']}",
                    _signed(d["evidence_iou_diff"]) + " " + _ci(d["evidence_iou_diff_ci95"], signed=True),
                ]
            )
        lines += _table(["policy", "accuracy diff [95% CI]", "won / lost", "evidence IoU diff [95% CI]"], body)
    for group, title in (("by_task", "task"), ("by_duration", "video duration")):
        cats = list(dict.fromkeys(c for n in names for c in results[n][group]))
        lines += ["", f"## Accuracy by {title}", ""]
        body = []
        for c in cats:
            cells = []
            for n in names:
                g = results[n][group].get(c)
                cells.append("-" if not g else f"{g['accuracy']:.3f} (n={g['n']})")
            body.append([c] + cells)
        lines += _table([title] + names, body)
        lines += ["", f"## Evidence IoU by {title}", ""]
        lines += _table(
            [title] + names,
            [[c] + [_fmt((results[n][group].get(c) or {}).get("evidence_iou")) for n in names] for c in cats],
        )
    lines += ["", "## Plots", ""] + [f"![{p[:-4].replace('_', ' ')}]({p})" for p in PLOTS]
    return "\n".join(lines) + "\n"


def _plots(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    tasks = list(dict.fromkeys(t for n in names for t in results[n]["by_task"]))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(tasks) * max(1, len(names)) ** 0.5), 4))
    width = 0.8 / max(1, len(names))
    for j, n in enumerate(names):
        groups = [results[n]["by_task"].get(t) or {} for t in tasks]
        acc = [g.get("accuracy", 0.0) for g in groups]
        err = [
            [a - (g.get("accuracy_ci95") or [a, a])[0] for a, g in zip(acc, groups)],
            [(g.get("accuracy_ci95") or [a, a])[1] - a for a, g in zip(acc, groups)],
        ]
        ax.bar([i + j * width for i in range(len(tasks))], acc, width, yerr=err, capsize=2, label=n)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(tasks))], tasks)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (95% CI)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / PLOTS[0], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 4))
    for n in names:
        o = results[n]["overall"]
        ax.scatter(o.get("frames_used") or 0.0, o.get("accuracy") or 0.0, s=50, label=n)
        ax.annotate(
            n, (o.get("frames_used") or 0.0, o.get("accuracy") or 0.0), textcoords="offset points", xytext=(5, 5)
        )
    ax.set_xlabel("mean frames used per question")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / PLOTS[1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 4))
    ious = [[s.iou for s in results[n]["rows"] if s.iou is not None] for n in names]
    ax.hist(ious, bins=10, range=(0, 1), label=names)
    ax.set_xlabel("evidence temporal IoU")
    ax.set_ylabel("questions")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / PLOTS[2], dpi=100)
    plt.close(fig)


def write_report(results: dict, out: str | Path, manifest: str = "") -> Path:
    """Write metrics.json, per_question.jsonl, report.md and the PNG plots into ``out``; returns report.md."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics_json(results), indent=2) + "\n")
    with (out / "per_question.jsonl").open("w") as f:
        for name, res in results.items():
            for s in res["rows"]:
                f.write(json.dumps({"policy": name, **asdict(s)}) + "\n")
    (out / "report.md").write_text(markdown(results, manifest))
    _plots(results, out)
    return out / "report.md"
