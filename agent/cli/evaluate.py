"""`foveate eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from agent.cli.common import console, fail, print_json


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def evaluate_cmd(
        manifest: Path = typer.Argument(..., help="Manifest JSONL with ground truth."),
        predictions: list[Path] = typer.Argument(..., help="One or more prediction JSONL files (one per policy)."),
        report: Optional[Path] = typer.Option(None, "--report", help="Write metrics.json, report.md and PNG plots here."),
        json_out: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    ) -> None:
        """Score predictions against a manifest: accuracy, evidence IoU, R@1, frames, tokens, latency."""
        from agent.records import read_manifest
        from evals.report import evaluate, write_report

        try:
            rows = read_manifest(manifest)
        except (OSError, ValueError) as exc:
            fail(str(exc).splitlines()[0])
        for p in predictions:
            if not p.exists():
                fail(f"{p}: no such predictions file")
        results = evaluate(rows, predictions)
        if report:
            write_report(results, report)
        if json_out:
            print_json({k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")} for k, v in results.items()})
        else:
            for name, res in results.items():
                o = res["overall"]
                console.print(f"[bold]{name}[/]: accuracy {o['accuracy']:.3f} (n={o['n']}), evidence IoU {o['evidence_iou'] or 0:.3f}, "
                              f"frames {o['frames_used']:.1f}, tool calls {o['tool_calls']:.1f}, errors {o['errors']}")
            if report:
                console.print(f"report: {report / 'report.md'}")
