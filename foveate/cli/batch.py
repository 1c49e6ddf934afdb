"""`foveate batch`."""

from __future__ import annotations

from pathlib import Path

import typer

from foveate.cli.common import err_console, fail, run_settings, setup_logging
from foveate.cli.index import EMBEDDER_HELP


def register(app: typer.Typer) -> None:
    @app.command("batch")
    def batch(
        manifest: Path = typer.Argument(
            ..., help="Manifest JSONL: {id, video, question, options?, answer?, evidence?, task?}."
        ),
        out: Path = typer.Option(..., "--out", help="Predictions JSONL (appended; rerun to resume)."),
        workers: int = typer.Option(1, "--workers", help="Questions answered in parallel per video."),
        controller: str | None = typer.Option(
            None, "--controller", help="HF model id, local model directory, or openai:MODEL@URL."
        ),
        embedder: str | None = typer.Option(None, "--embedder", help=EMBEDDER_HELP),
        policy: str = typer.Option(
            "agent", "--policy", help="agent (tools), uniform (N even frames) or retrieval (top-N clips' frames)."
        ),
        frames: int = typer.Option(16, "--frames", help="Frame budget of the uniform and retrieval baselines."),
        max_steps: int | None = typer.Option(
            None,
            "--max-steps",
            show_default=False,
            help="Agent: controller turns before a final answer is forced "
            "(default 6, or the setting the controller was trained with).",
        ),
        max_frames: int | None = typer.Option(
            None,
            "--max-frames",
            show_default=False,
            help="Agent: frames the tools may spend per question "
            "(default 48, or the setting the controller was trained with).",
        ),
        cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Cache root."),
        trace: Path | None = typer.Option(None, "--trace", help="Append every trajectory (JSONL) here."),
    ) -> None:
        """Answer every question of a manifest; finished ids are skipped, so a rerun resumes."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from foveate.agent.backends import DEFAULT_CONTROLLER, load_controller
        from foveate.agent.batch import POLICIES, run_batch
        from foveate.agent.records import read_manifest
        from foveate.memory import DEFAULT_EMBEDDER, ingest
        from foveate.memory.errors import FoveateError

        setup_logging()
        if policy not in POLICIES:
            fail(f"--policy {policy!r}: valid policies are {', '.join(POLICIES)}", 2)
        config, ingest_config, embedder = run_settings(controller, embedder, max_steps, max_frames)
        try:
            rows = read_manifest(manifest)
            ctl = load_controller(controller or DEFAULT_CONTROLLER)
        except (FoveateError, ValueError, OSError) as exc:
            fail(str(exc).splitlines()[0])

        def load(video):
            return ingest(
                video,
                cache_root=cache_dir,
                embedder=embedder or DEFAULT_EMBEDDER,
                config=ingest_config,
            )

        failed = 0
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
        ) as bar:
            task = bar.add_task(f"{policy}", total=len(rows))
            from foveate.agent.records import iter_predictions

            bar.update(task, completed=len({p.id for p in iter_predictions(out)} & {r.id for r in rows}))

            def on_row(pred) -> None:
                nonlocal failed
                failed += pred.error is not None
                bar.advance(task)

            n = run_batch(rows, out, ctl, load, policy, config, frames, workers, trace, on_row)
        err_console.print(f"answered {n} questions ({failed} failed) -> {out}")
