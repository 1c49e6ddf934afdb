"""`foveate index` and the ingest-with-progress helper other commands share."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from foveate.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    err_console,
    fail,
    interrupted,
    print_error,
    print_json,
    safe_text,
    setup_logging,
)

logger = logging.getLogger(__name__)

EMBEDDER_HELP = (
    "Clip embedder: openclip:ARCH/PRETRAINED (default openclip:ViT-B-32/laion2b_s34b_b79k, downloaded "
    "on first use) or openclip:DIR, a local model directory (e.g. from `foveate synth models OUT`)."
)
CACHE_HELP = "Cache root (default $FOVEATE_CACHE, else ~/.cache/foveate)."


def ingest_with_progress(video: Path, cache_dir: Path | None, embedder, embed: bool = True, config=None):
    """memory.ingest with a transient rich progress bar per stage on stderr (``config``: an IngestConfig)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from foveate.memory import DEFAULT_EMBEDDER, IngestConfig, ingest

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, fraction: float) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"{safe_text(video.name)}: {stage}", total=1.0)
            bar.update(tasks[stage], completed=min(1.0, max(0.0, fraction)))

        try:
            return ingest(
                video,
                cache_root=cache_dir,
                embedder=(embedder or DEFAULT_EMBEDDER) if embed else None,
                config=(config or IngestConfig()).model_copy(update={"embed": embed}),
                progress=progress,
            )
        except KeyboardInterrupt:  # the scan's threads have stopped (memory.threads); the cache keeps what was done
            bar.stop()
            interrupted()


def _index_one(video: Path, cache_dir: Path | None, embedder, embed: bool) -> dict:
    from foveate.memory.indexing import index_report

    return index_report(video, lambda v: ingest_with_progress(v, cache_dir, embedder, embed=embed))


def _report(row: dict, json_out: bool) -> None:
    if json_out:
        print_json(row)
    elif row["status"] == "ok":
        err_console.print(
            f"[green]ok[/] {safe_text(row['video'])}: {row['duration_s']:.1f}s, {row['segments']} segments, "
            f"{row['clips']} clips, "
            f"motion from {row['motion_source']}, clip frames from {row['clip_frames'] or '-'}"
            f"{' (cached)' if row['cached'] else ''} ({row['seconds']:.1f}s)",
            highlight=False,
        )
    else:
        err_console.print(f"[red]error[/] {safe_text(row['error'])}", highlight=False, soft_wrap=True)


def _load_embedder_or_exit(spec: str | None, videos: list[Path], json_out: bool):
    """Load the embedder once up front: a bad spec is a usage error (2), an unloadable model fails every video (1)."""
    from foveate.memory.embedder import DEFAULT_EMBEDDER, check_embedder, load_embedder, parse_spec
    from foveate.memory.errors import EmbedderError

    spec = spec or DEFAULT_EMBEDDER
    try:
        parse_spec(spec)
    except EmbedderError as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        check_embedder(spec)  # the cheap checks first: weights not cached with the hub away is one clear line
        return load_embedder(spec)
    except EmbedderError as exc:
        if json_out:  # the contract: one object per video
            for video in videos:
                _report({"video": str(video), "status": "error", "error": str(exc), "seconds": 0.0}, json_out)
        else:  # the cause once, not once per video
            print_error(f"{exc} ({len(videos)} video(s) not indexed)")
        raise typer.Exit(EXIT_FAILED) from None


def _index_on_ray(videos, cache_dir, embedder, no_embed, json_out, address, workers) -> None:
    from foveate.cli.batch import _ray_runner
    from foveate.memory.embedder import DEFAULT_EMBEDDER, parse_spec
    from foveate.memory.errors import EmbedderError

    runner = _ray_runner()
    spec = None if no_embed else (embedder or DEFAULT_EMBEDDER)
    if spec is not None:
        try:
            parse_spec(spec)
        except EmbedderError as exc:
            fail(str(exc), EXIT_USAGE)
    rows = runner.index_ray(
        videos, cache_dir, spec, address=address, workers=workers, on_row=lambda r: _report(r, json_out)
    )
    if any(row["status"] != "ok" for row in rows):
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    @app.command("index")
    def index(
        videos: list[Path] = typer.Argument(..., help="Video files to index (each is cached by its content)."),
        cache_dir: Path | None = typer.Option(None, "--cache-dir", help=CACHE_HELP),
        embedder: str | None = typer.Option(None, "--embedder", help=EMBEDDER_HELP),
        no_embed: bool = typer.Option(
            False, "--no-embed", help="Build only the overview (no clip index, no model needed)."
        ),
        json_out: bool = typer.Option(False, "--json", help="One JSON object per video on stdout."),
        verbose: bool = typer.Option(
            False, "--verbose", "-v", help="Debug logging (shows tracebacks of unexpected failures)."
        ),
        ray: bool = typer.Option(
            False,
            "--ray",
            help="Index on a Ray cluster (pip install 'foveate\\[ray]'), each worker loading the embedder once: "
            "a local one with --ray-workers CPUs, or the one RAY_ADDRESS / --ray-address names. The cache folder "
            "must be one every worker sees.",
        ),
        ray_address: str | None = typer.Option(None, "--ray-address", help="With --ray: the cluster to join."),
        ray_workers: int | None = typer.Option(
            None, "--ray-workers", min=1, max=4096, help="With --ray: workers at once (default: the cluster's CPUs)."
        ),
    ) -> None:
        """Build the overview and clip index of each video. Exit 0 if all succeeded, 1 if any failed."""
        setup_logging(verbose)
        if (ray_address or ray_workers) and not ray:
            fail("--ray-address and --ray-workers need --ray", EXIT_USAGE)
        if ray:
            _index_on_ray(videos, cache_dir, embedder, no_embed, json_out, ray_address, ray_workers)
            return
        emb = None if no_embed else _load_embedder_or_exit(embedder, videos, json_out)
        failed = 0
        for video in videos:
            row = _index_one(video, cache_dir, emb, embed=not no_embed)
            failed += row["status"] != "ok"
            _report(row, json_out)
        if failed:
            raise typer.Exit(EXIT_FAILED)
