"""`foveate index` and shared ingest helpers for the CLI."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from agent.cli.common import EXIT_FAILED, err_console, print_json, setup_logging

EMBEDDER_HELP = "Clip embedder: openclip:ARCH/PRETRAINED or openclip:DIR (a local model directory)."


def ingest_with_progress(video: Path, cache_dir: Optional[Path], embedder: Optional[str], embed: bool = True):
    """memory.ingest with a rich progress bar on stderr."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from memory import DEFAULT_EMBEDDER, IngestConfig, ingest

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                  console=err_console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, fraction: float) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"{video.name}: {stage}", total=1.0)
            bar.update(tasks[stage], completed=fraction)

        return ingest(video, cache_root_dir=cache_dir, embedder=(embedder or DEFAULT_EMBEDDER) if embed else None,
                      config=IngestConfig(embed=embed), progress=progress)


def register(app: typer.Typer) -> None:
    @app.command("index")
    def index(
        videos: list[Path] = typer.Argument(..., help="Video files to index."),
        cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Cache root (default $FOVEATE_CACHE or ~/.cache/foveate)."),
        embedder: Optional[str] = typer.Option(None, "--embedder", help=EMBEDDER_HELP),
        no_embed: bool = typer.Option(False, "--no-embed", help="Build only the overview, not the clip index."),
        json_out: bool = typer.Option(False, "--json", help="One JSON object per video on stdout."),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
    ) -> None:
        """Build the overview and clip index of each video (cached by content). Exit 1 if any failed."""
        from memory.errors import FoveateError

        setup_logging(verbose)
        failed = 0
        for video in videos:
            start = time.perf_counter()
            try:
                mem = ingest_with_progress(video, cache_dir, embedder, embed=not no_embed)
                row = {"video": str(video), "status": "ok", "duration_s": round(mem.duration_seconds, 3),
                       "segments": len(mem.overview.segments), "clips": len(mem.clips) if mem.has_clip_index else 0,
                       "motion_source": mem.overview.motion_source, "seconds": round(time.perf_counter() - start, 3)}
            except FoveateError as exc:
                failed += 1
                row = {"video": str(video), "status": "error", "error": str(exc), "seconds": round(time.perf_counter() - start, 3)}
            if json_out:
                print_json(row)
            elif row["status"] == "ok":
                err_console.print(f"[green]ok[/] {video}: {row['duration_s']:.1f}s, {row['segments']} segments, "
                                  f"{row['clips']} clips, motion from {row['motion_source']} ({row['seconds']:.1f}s)")
            else:
                err_console.print(f"[red]error[/] {row['error']}", highlight=False)
        if failed:
            raise typer.Exit(EXIT_FAILED)
