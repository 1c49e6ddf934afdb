"""`foveate eval` (score predictions) and `foveate convert` (public benchmark annotations -> manifest)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from foveate.cli.common import EXIT_USAGE, console, err_console, fail, print_json


def _summary_line(name: str, o: dict) -> str:
    iou = "-" if o.get("evidence_iou") is None else f"{o['evidence_iou']:.3f}"
    ci = o.get("accuracy_ci95") or [0.0, 0.0]
    frames = o.get("frames_used") or 0.0
    return (
        f"[bold]{name}[/]: accuracy {o['accuracy']:.3f} [{ci[0]:.2f}, {ci[1]:.2f}] (n={o['n']}), "
        f"evidence IoU {iou}, frames {frames:.1f}, tool calls {o.get('tool_calls') or 0:.1f}, "
        f"missing {o['missing']}, errors {o['error_rows']}"
    )


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def evaluate_cmd(
        manifest: Path = typer.Argument(..., help="Manifest JSONL with the ground truth."),
        predictions: list[Path] = typer.Argument(
            ..., help="Prediction JSONL files, one per policy, compared side by side."
        ),
        report: Path | None = typer.Option(
            None, "--report", help="Write metrics.json, report.md and PNG plots into this folder."
        ),
        seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap confidence intervals."),
        json_out: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object."),
    ) -> None:
        """Score predictions: accuracy with 95% CI, evidence IoU, R@1 at IoU 0.3/0.5/0.7, frames, tool calls, \
tokens, latency."""
        from foveate.agent.records import read_manifest
        from foveate.evals.report import evaluate, metrics_json, write_report

        if not manifest.is_file():
            fail(f"{manifest}: no such manifest file", EXIT_USAGE)
        try:
            rows = read_manifest(manifest)
        except (OSError, ValueError) as exc:
            fail(str(exc).splitlines()[0])
        if not rows:
            fail(f"{manifest}: the manifest has no rows")
        for p in predictions:
            if not p.is_file():
                fail(f"{p}: no such predictions file", EXIT_USAGE)
        try:
            results = evaluate(rows, predictions, seed=seed)
        except (OSError, ValueError) as exc:
            fail(str(exc).splitlines()[0])
        for _name, res in results.items():
            if res["bad_lines"] or res["unknown_ids"]:
                err_console.print(
                    f"[yellow]warning:[/] {res['file']}: {res['bad_lines']} unreadable line(s), "
                    f"{res['unknown_ids']} id(s) not in the manifest",
                    highlight=False,
                )
        path = write_report(results, report, str(manifest)) if report else None
        if json_out:
            print_json(metrics_json(results))
            return
        for name, res in results.items():
            console.print(_summary_line(name, res["overall"]), highlight=False)
        if path:
            console.print(f"report: {path}")

    @app.command("convert")
    def convert_cmd(
        bench: str = typer.Argument(
            ..., help="Benchmark: videomme, longvideobench, mlvu, nextqa, egoschema or lvbench."
        ),
        annotation: Path = typer.Argument(
            ..., help="The benchmark's own annotation file (see docs/synthetic_world.md)."
        ),
        videos: Path = typer.Option(..., "--videos", help="Folder holding the benchmark's videos."),
        out: Path = typer.Option(..., "--out", help="Manifest JSONL to write."),
        json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    ) -> None:
        """Convert a public benchmark's annotations into a Foveate manifest (for foveate batch / eval)."""
        from foveate.evals.adapters import ADAPTERS, AnnotationError, convert

        if bench.lower() not in ADAPTERS:
            fail(f"unknown benchmark {bench!r}; valid: {', '.join(ADAPTERS)}", EXIT_USAGE)
        if not annotation.exists():
            fail(f"{annotation}: no such annotation file", EXIT_USAGE)
        try:
            rows = convert(bench.lower(), annotation, videos.resolve())
        except AnnotationError as exc:
            fail(str(exc))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(r.model_dump(exclude_none=True)) + "\n" for r in rows))
        missing = sorted({r.video for r in rows if not Path(r.video).is_file()})
        summary = {
            "bench": bench.lower(),
            "out": str(out),
            "questions": len(rows),
            "videos": len({r.video for r in rows}),
            "missing_videos": len(missing),
        }
        if json_out:
            print_json(summary)
            return
        console.print(f"wrote {len(rows)} questions about {summary['videos']} videos to {out}")
        if missing:
            err_console.print(
                f"[yellow]warning:[/] {len(missing)} video file(s) not found under {videos}, e.g. {missing[0]}",
                highlight=False,
            )
