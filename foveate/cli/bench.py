"""`foveate bench ingest`: the command around :mod:`foveate.evals.bench`."""

from __future__ import annotations

from pathlib import Path

import typer

from foveate.cli.common import EXIT_FAILED, EXIT_USAGE, console, err_console, fail, print_json, setup_logging


def _print_table(result: dict) -> None:
    from rich.table import Table
    from rich.text import Text

    title = (
        f"{Path(result['video']).name}: {result['codec']} {result['size']} {result['fps']:g} fps, "
        f"{result['duration_s']:.1f} s, {result['frames']} frames"
    )
    table = Table(
        title=Text(title),
        caption="process: from starting the phase's process to its result; ratio: the plain decode's process "
        "seconds / the phase's (above 1 is faster)",
    )
    for column in ("phase", "process s", "work s", "ratio to plain decode", "x real time", "peak RSS (MB)"):
        table.add_column(column, justify="left" if column == "phase" else "right", no_wrap=column == "phase")
    for name, p in result["phases"].items():
        label = f"{name} (baseline)" if name == result["baseline"] else name
        table.add_row(
            label,
            f"{p['process_seconds']:.2f}",
            f"{p['seconds']:.2f}",
            f"{p['ratio_to_plain_decode']:.2f}x",
            f"{p['x_realtime']:.0f}x",
            f"{p['peak_rss_mb']:.0f}",
        )
    console.print(table)
    console.print(
        f"overview: {result['segments']} segments, {result['cuts']} cuts, {result['keyframes']} keyframe thumbnails, "
        f"motion from {result['motion_source']}",
        highlight=False,
        markup=False,
    )
    if "overview_profile" in result:
        console.print(result["overview_profile"], highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    def ingest_bench(
        video: Path | None = typer.Argument(None, help="Video to benchmark (may be omitted with --make-synthetic)."),
        make_synthetic: Path | None = typer.Option(
            None,
            "--make-synthetic",
            "--make",
            help="First write a synthetic H.264 camera-motion video to this path, then benchmark it.",
        ),
        minutes: float = typer.Option(10.0, "--minutes", min=0.01, help="With --make-synthetic: length in minutes."),
        size: str = typer.Option("1280x720", "--size", help="With --make-synthetic: WIDTHxHEIGHT (even numbers)."),
        fps: int = typer.Option(30, "--fps", min=1, max=240, help="With --make-synthetic: frames per second."),
        preset: str = typer.Option(
            "veryfast", "--preset", help="With --make-synthetic: x264 preset (ultrafast has no B-frames)."
        ),
        threads: int | None = typer.Option(
            None,
            "--threads",
            min=1,
            max=16,
            help="Overview decode threads (time ranges scanned in parallel); default: IngestConfig.decode_threads.",
        ),
        profile: bool = typer.Option(
            False, "--profile", help="Also print where the overview spends its time (cProfile, top 12)."
        ),
        embedder: str | None = typer.Option(
            None,
            "--embedder",
            help="Also time `foveate index` with this embedder spec (e.g. openclip:DIR); without it the index "
            "phase is skipped.",
        ),
        repeat: int = typer.Option(
            1,
            "--repeat",
            min=1,
            max=20,
            help="Run every phase this many times (in rounds) and report each phase's fastest run.",
        ),
        json_out: bool = typer.Option(False, "--json", help="Print the figures as one JSON object."),
    ) -> None:
        """The overview (and, with --embedder, the index) against demux only, keyframes only, the plain decode of
        every frame (the baseline), decode to RGB and uniform seeking, all measured in this run on VIDEO, each in
        its own process: seconds, ratio to the plain decode, and peak RSS."""
        from foveate.evals.bench import bench_ingest, make_synthetic_video

        setup_logging()
        if make_synthetic is not None:
            try:
                w, h = (int(v) for v in size.lower().split("x"))
            except ValueError:
                fail(f"--size {size!r}: expected WIDTHxHEIGHT, e.g. 1280x720", EXIT_USAGE)
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            with Progress(
                TextColumn(f"writing {make_synthetic.name} ({minutes:g} min, {w}x{h}, {fps} fps)"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err_console,
                transient=True,
            ) as bar:
                task = bar.add_task("frames", total=None)
                video = make_synthetic_video(
                    make_synthetic,
                    minutes,
                    w,
                    h,
                    fps,
                    preset,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
        if video is None:
            fail("give a VIDEO or --make-synthetic PATH", EXIT_USAGE)
        if not video.is_file():
            fail(f"{video}: no such file", EXIT_USAGE)
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console, transient=True
        ) as bar:
            task = bar.add_task("starting", total=None)
            try:
                result = bench_ingest(
                    video,
                    profile,
                    threads,
                    embedder,
                    progress=lambda name: bar.update(task, description=f"phase {name}"),
                    repeat=repeat,
                )
            except RuntimeError as exc:
                bar.stop()
                fail(f"{video}: {exc}", EXIT_FAILED)
        if json_out:
            print_json(result)
        else:
            _print_table(result)
