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


def _ray_runner():
    """The Ray runner, or a usage error naming the extra to install."""
    try:
        import ray  # noqa: F401
    except ImportError:
        fail("--ray needs Ray: pip install 'foveate[ray]'", EXIT_USAGE)
    from foveate.agent import ray_runner

    return ray_runner


def _progress_bar():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=err_console,
    )


def _run_ray(rows, out, settings, address, workers, trace):
    """run_batch_ray under the same progress bar as the local runner."""
    runner = _ray_runner()
    from foveate.agent.batch import done_ids

    with _progress_bar() as bar:
        task = bar.add_task(f"{settings.policy} (ray)", total=len(rows), rate="")
        bar.update(task, completed=len(done_ids(out) & {r.id for r in rows}) if out.exists() else 0)
        return runner.run_batch_ray(rows, out, settings, address, workers, trace, _rate_advance(bar, task))


def _rate_advance(bar, task):
    """A callback that advances ``task`` by one and shows questions per minute since it was made."""
    start, answered = time.monotonic(), 0

    def advance(_) -> None:
        nonlocal answered
        answered += 1
        per_minute = 60.0 * answered / max(1e-9, time.monotonic() - start)
        bar.update(task, advance=1, rate=f"{per_minute:.1f} q/min")

    return advance


def _run(rows, out, ctl, load, policy, config, frames, concurrency, trace, baseline_format):
    """run_batch under a progress bar that starts at the ids already done and shows questions per minute."""
    from foveate.agent.batch import done_ids, run_batch

    with _progress_bar() as bar:
        task = bar.add_task(f"{policy}", total=len(rows), rate="")
        bar.update(task, completed=len(done_ids(out) & {r.id for r in rows}))
        advance = _rate_advance(bar, task)
        return run_batch(rows, out, ctl, load, policy, config, frames, concurrency, trace, advance, baseline_format)


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
        baseline_format: str = typer.Option(
            "prompt",
            "--baseline-format",
            help="How the baselines show their frames: prompt (one user turn with every frame, answer without "
            "tools) or episode (the agent's episode, opened by the zoom calls that fetch those frames; for a "
            "controller trained only on agent episodes).",
        ),
        max_steps: int | None = max_steps_option(agent_policy_only=True),
        max_frames: int | None = max_frames_option(agent_policy_only=True),
        cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Cache root."),
        trace: Path | None = typer.Option(None, "--trace", help="Append every trajectory (JSONL) here."),
        wait: bool = typer.Option(
            False, "--wait", help="When another run is writing --out, wait for it instead of exiting 1."
        ),
        timeout: float = timeout_option(),
        ray: bool = typer.Option(
            False,
            "--ray",
            help="Shard the manifest by video over a Ray cluster (pip install 'foveate\\[ray]'): a local one with "
            "--ray-workers CPUs, or the one RAY_ADDRESS / --ray-address names. This process alone writes --out.",
        ),
        ray_address: str | None = typer.Option(
            None, "--ray-address", help="With --ray: the cluster to join (e.g. ray://head:10001, or auto)."
        ),
        ray_workers: int | None = typer.Option(
            None,
            "--ray-workers",
            min=1,
            max=4096,
            help="With --ray: workers (Ray actors) at once; default one per CPU of the cluster, or one per GPU "
            "for a local controller model on a cluster with GPUs.",
        ),
    ) -> None:
        """Answer every question of a manifest; answered ids are skipped and failed ones retried, so a rerun
        resumes. Exit 1 when any question failed."""
        from foveate.agent.backends import DEFAULT_CONTROLLER, check_controller, load_controller
        from foveate.agent.batch import BASELINE_FORMATS, POLICIES, OutputLocked, check_output, lock_output
        from foveate.agent.ray_runner import AnswerSettings
        from foveate.agent.records import read_manifest
        from foveate.memory import DEFAULT_EMBEDDER, ingest
        from foveate.memory.errors import FoveateError

        setup_logging()
        if policy not in POLICIES:
            fail(f"--policy {policy!r}: valid policies are {', '.join(POLICIES)}", EXIT_USAGE)
        if baseline_format not in BASELINE_FORMATS:
            fail(f"--baseline-format {baseline_format!r}: valid are {', '.join(BASELINE_FORMATS)}", EXIT_USAGE)
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

        if (ray_address or ray_workers) and not ray:
            fail("--ray-address and --ray-workers need --ray", EXIT_USAGE)
        if ray:
            _ray_runner()  # Ray missing: a usage error before any work
        try:
            with lock_output(out, wait=wait, on_wait=waiting):
                if ray:
                    spec = controller or DEFAULT_CONTROLLER
                    try:
                        check_controller(spec)
                    except (FoveateError, ValueError, OSError) as exc:
                        fail(str(exc).splitlines()[0])
                    settings = AnswerSettings(
                        controller=spec,
                        embedder=embedder or DEFAULT_EMBEDDER,
                        ingest=ingest_config,
                        cache_dir=str(cache_dir) if cache_dir else None,
                        policy=policy,
                        agent=config,
                        n_frames=frames,
                        concurrency=concurrency,
                        controller_options={"timeout": timeout},
                        baseline_format=baseline_format,
                    )
                    summary = _run_ray(rows, out, settings, ray_address, ray_workers, trace)
                else:
                    try:
                        ctl = load_controller(controller or DEFAULT_CONTROLLER, timeout=timeout)
                    except (FoveateError, ValueError, OSError) as exc:
                        fail(str(exc).splitlines()[0])
                    summary = _run(rows, out, ctl, load, policy, config, frames, concurrency, trace, baseline_format)
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
