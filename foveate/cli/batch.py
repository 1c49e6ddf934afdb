"""`foveate batch`."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from foveate.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    err_console,
    fail,
    max_frames_option,
    max_steps_option,
    run_settings,
    safe_text,
    setup_logging,
    timeout_option,
)
from foveate.cli.index import EMBEDDER_HELP


def _run(rows, out, ctl, load, policy, config, frames, concurrency, trace):
    """run_batch under a progress bar that starts at the ids already done and shows questions per minute."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from foveate.agent.batch import done_ids, run_batch

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=err_console,
    ) as bar:
        task = bar.add_task(f"{policy}", total=len(rows), rate="")
        bar.update(task, completed=len(done_ids(out) & {r.id for r in rows}))
        start, answered = time.monotonic(), 0

        def advance(_) -> None:
            nonlocal answered
            answered += 1
            per_minute = 60.0 * answered / max(1e-9, time.monotonic() - start)
            bar.update(task, advance=1, rate=f"{per_minute:.1f} q/min")

        return run_batch(rows, out, ctl, load, policy, config, frames, concurrency, trace, advance)


def register(app: typer.Typer) -> None:
    @app.command("batch")
    def batch(
        manifest: Path = typer.Argument(
            ..., help="Manifest JSONL: {id, video, question, options?, answer?, evidence?, task?}."
        ),
        out: Path = typer.Option(
            ..., "--out", help="Predictions JSONL (appended; rerun to resume; an id's last row counts)."
        ),
        concurrency: int = typer.Option(
            1,
            "--concurrency",
            "--workers",
            min=1,
            max=1024,
            help="Questions in flight at once, across videos (one event loop; an openai: server gets this many "
            "requests together, for its continuous batching). Each video is indexed once, one at a time.",
        ),
        controller: str | None = typer.Option(
            None, "--controller", help="HF model id, local model directory, or openai:MODEL@URL."
        ),
        embedder: str | None = typer.Option(None, "--embedder", help=EMBEDDER_HELP),
        policy: str = typer.Option(
            "agent", "--policy", help="agent (tools), uniform (N even frames) or retrieval (top-N clips' frames)."
        ),
        frames: int = typer.Option(
            16, "--frames", min=1, max=256, help="Frame budget of the uniform and retrieval baselines."
        ),
        max_steps: int | None = max_steps_option(agent_policy_only=True),
        max_frames: int | None = max_frames_option(agent_policy_only=True),
        cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Cache root."),
        trace: Path | None = typer.Option(None, "--trace", help="Append every trajectory (JSONL) here."),
        wait: bool = typer.Option(
            False, "--wait", help="When another run is writing --out, wait for it instead of exiting 1."
        ),
        timeout: float = timeout_option(),
    ) -> None:
        """Answer every question of a manifest; answered ids are skipped and failed ones retried, so a rerun
        resumes. Exit 1 when any question failed."""
        from foveate.agent.backends import DEFAULT_CONTROLLER, load_controller
        from foveate.agent.batch import POLICIES, OutputLocked, check_output, lock_output
        from foveate.agent.records import read_manifest
        from foveate.memory import DEFAULT_EMBEDDER, ingest
        from foveate.memory.errors import FoveateError

        setup_logging()
        if policy not in POLICIES:
            fail(f"--policy {policy!r}: valid policies are {', '.join(POLICIES)}", EXIT_USAGE)
        config, ingest_config, embedder = run_settings(controller, embedder, max_steps, max_frames)
        if not manifest.is_file():
            fail(f"{manifest}: no such manifest file", EXIT_USAGE)
        try:
            rows = read_manifest(manifest)
            check_output(out, manifest)
        except (ValueError, OSError) as exc:
            fail(str(exc).splitlines()[0])
        if not rows:
            fail(f"{manifest}: the manifest has no rows")

        def load(video):
            return ingest(
                video,
                cache_root=cache_dir,
                embedder=embedder or DEFAULT_EMBEDDER,
                config=ingest_config,
            )

        def waiting(pid: int | None) -> None:
            holder = f"pid {pid}" if pid else "another process"
            err_console.print(
                f"waiting for {holder} to finish writing {safe_text(str(out))}", highlight=False, soft_wrap=True
            )

        try:
            with lock_output(out, wait=wait, on_wait=waiting):
                try:
                    ctl = load_controller(controller or DEFAULT_CONTROLLER, timeout=timeout)
                except (FoveateError, ValueError, OSError) as exc:
                    fail(str(exc).splitlines()[0])
                summary = _run(rows, out, ctl, load, policy, config, frames, concurrency, trace)
        except OutputLocked as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"{out}: {exc.strerror or exc}")
        line = (
            f"{len(rows)} questions: {summary.answered} answered, {summary.failed} failed, "
            f"{summary.skipped} skipped (already done) -> {out}"
        )
        if summary.failed:
            err_console.print(
                f"[bold red]error:[/] {safe_text(line)}; rerun to retry the failed ones",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_FAILED)
        err_console.print(safe_text(line), highlight=False, soft_wrap=True)
