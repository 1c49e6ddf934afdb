"""`foveate eval` (score predictions) and `foveate convert` (public benchmark annotations -> manifest)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

from foveate.cli.common import EXIT_USAGE, console, err_console, fail, print_json, safe_text


def _summary_line(name: str, o: dict) -> str:
    iou = "-" if o.get("evidence_iou") is None else f"{o['evidence_iou']:.3f}"
    ci = o.get("accuracy_ci95") or [0.0, 0.0]
    frames = o.get("frames_used") or 0.0
    return (
        f"[bold]{name}[/]: accuracy {o['accuracy']:.3f} [{ci[0]:.2f}, {ci[1]:.2f}] (n={o['n']}), "
        f"evidence IoU {iou}, frames {frames:.1f}, tool calls {o.get('tool_calls') or 0:.1f}, "
        f"missing {o['missing']}, errors {o['error_rows']}"
    )


def paired_line(d: dict, name: str = "") -> str:
    """One policy's paired difference (``evaluate(..., against=...)``'s ``paired``) as one line."""
    ci = d["accuracy_diff_ci95"] or [0.0, 0.0]
    line = (
        f"{name or ' '} minus {d['against']}: accuracy {d['accuracy_diff']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}], "
        f"won {d['won']}, lost {d['lost']}"
    )
    if d["evidence_iou_diff"] is not None:
        ci = d["evidence_iou_diff_ci95"]
        line += f", evidence IoU {d['evidence_iou_diff']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]"
    return line


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
        against: str | None = typer.Option(
            None,
            "--against",
            help="Compare every other policy with this one (its name or its file's stem), question by question: "
            "accuracy and evidence IoU differences with paired 95% bootstrap CIs, questions won and lost.",
        ),
        json_out: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object."),
    ) -> None:
        """Score predictions: accuracy with 95% CI, evidence IoU, R@1 at IoU 0.3/0.5/0.7, frames, tool calls, \
tokens, latency; with --against, paired differences from one policy."""
        from foveate.agent.records import read_manifest
        from foveate.evals.report import UnknownPolicy, evaluate, metrics_json, write_report

        if not manifest.is_file():
            fail(f"{manifest}: no such manifest file", EXIT_USAGE)
        if report is not None and report.exists() and not report.is_dir():
            fail(f"--report {report}: is a file; give a folder for metrics.json, report.md and the plots")
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
            results = evaluate(rows, predictions, seed=seed, against=against)
        except UnknownPolicy as exc:
            fail(str(exc), EXIT_USAGE)
        except (OSError, ValueError) as exc:
            fail(str(exc).splitlines()[0])
        for _name, res in results.items():
            if res["bad_lines"] or res["unknown_ids"]:
                err_console.print(
                    f"[yellow]warning:[/] {res['file']}: {res['bad_lines']} unreadable line(s), "
                    f"{res['unknown_ids']} id(s) not in the manifest",
                    highlight=False,
                )
            if res.get("repeated_ids"):
                err_console.print(
                    f"{res['file']}: {res['repeated_ids']} id(s) had several rows; the last row counts",
                    highlight=False,
                    markup=False,
                    soft_wrap=True,
                )
        path = write_report(results, report, str(manifest)) if report else None
        if json_out:
            print_json(metrics_json(results))
            return
        for name, res in results.items():
            console.print(_summary_line(name, res["overall"]), highlight=False)
            if "paired" in res:
                console.print(paired_line(res["paired"]), highlight=False)
        if path:
            console.print(f"report: {path}")

    @app.command("convert")
    def convert_cmd(
        bench: str = typer.Argument(
            ..., help="Benchmark: videomme, longvideobench, mlvu, nextqa, egoschema or lvbench."
        ),
        annotation: Path = typer.Argument(
            ..., help="The benchmark's own annotation file (README.md, 'Benchmarks', lists them)."
        ),
        videos: Path = typer.Option(..., "--videos", help="Folder holding the benchmark's videos."),
        out: Path = typer.Option(..., "--out", help="Manifest JSONL to write."),
        strict: bool = typer.Option(
            False, "--strict", help="Fail (exit 1, nothing written) when any record would be skipped."
        ),
        force: bool = typer.Option(False, "--force", help="Overwrite --out when it exists."),
        json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    ) -> None:
        """Convert a public benchmark's annotations into a Foveate manifest (for foveate batch / eval).

        A record that cannot be converted is skipped with a warning naming its file, place and reason."""
        from foveate.evals.adapters import ADAPTERS, AnnotationError, convert
        from foveate.memory.atomic import write_atomic

        _adapter_warnings_to_console()
        if bench.lower() not in ADAPTERS:
            fail(f"unknown benchmark {bench!r}; valid: {', '.join(ADAPTERS)}", EXIT_USAGE)
        if not annotation.exists():
            fail(f"{annotation}: no such annotation file", EXIT_USAGE)
        if out.is_dir():
            fail(f"--out {out}: is a directory; give the manifest file to write")
        if out.exists() and not force:
            fail(f"--out {out}: exists; pass --force to overwrite it")
        try:
            result = convert(bench.lower(), annotation, videos.resolve())
        except AnnotationError as exc:
            fail(str(exc))
        rows, skipped = result.rows, result.skipped
        if strict and skipped:
            fail(f"{skipped[0]} ({len(skipped)} record(s) would be skipped; --strict makes that an error)")
        _warn_skipped(skipped)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, "".join(json.dumps(r.model_dump(exclude_none=True)) + "\n" for r in rows))
        missing = sorted({r.video for r in rows if not Path(r.video).is_file()})
        summary = {
            "bench": bench.lower(),
            "out": str(out),
            "questions": len(rows),
            "videos": len({r.video for r in rows}),
            "missing_videos": len(missing),
            "skipped": len(skipped),
            "skipped_records": [s.model_dump() for s in skipped],
        }
        if missing:
            err_console.print(
                f"[yellow]warning:[/] {len(missing)} video file(s) not found under {safe_text(str(videos))}, "
                f"e.g. {safe_text(missing[0])}",
                highlight=False,
            )
        if json_out:
            print_json(summary)
            return
        err_console.print(
            f"wrote {len(rows):,} questions about {summary['videos']:,} videos to {safe_text(str(out))} "
            f"({len(skipped):,} skipped)",
            highlight=False,
            soft_wrap=True,
        )


MAX_SKIP_WARNINGS = 20


class _WarningLines(logging.Handler):
    """The adapters' logged warnings as one 'warning: ...' line each, like the skip warnings."""

    def emit(self, record: logging.LogRecord) -> None:
        err_console.print(f"[yellow]warning:[/] {safe_text(record.getMessage())}", highlight=False, soft_wrap=True)


def _adapter_warnings_to_console() -> None:
    log = logging.getLogger("foveate.evals.adapters")
    if not any(isinstance(h, _WarningLines) for h in log.handlers):
        log.addHandler(_WarningLines(logging.WARNING))
        log.propagate = False


def _warn_skipped(skipped: list) -> None:
    for s in skipped[:MAX_SKIP_WARNINGS]:
        err_console.print(f"[yellow]warning:[/] {safe_text(str(s))}; skipped", highlight=False, soft_wrap=True)
    if len(skipped) > MAX_SKIP_WARNINGS:
        err_console.print(
            f"[yellow]warning:[/] ... and {len(skipped) - MAX_SKIP_WARNINGS:,} more skipped record(s) "
            "(--json lists them all)",
            highlight=False,
        )
