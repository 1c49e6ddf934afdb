"""`foveate bench ingest` and `foveate bench retrieval`: the commands around :mod:`foveate.evals.bench`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import typer

from foveate.cli.common import EXIT_FAILED, EXIT_USAGE, console, err_console, fail, print_json, setup_logging


@contextlib.contextmanager
def _spinner(errors: tuple[type[BaseException], ...], prefix: str = "") -> Iterator[Callable[[str], None]]:
    """A transient spinner with the elapsed time; yields ``describe(text)``. ``errors`` raised inside stop it
    and end the command with their one line (``prefix`` first), exit code 1."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console, transient=True
    ) as bar:
        task = bar.add_task("starting", total=None)
        try:
            yield lambda text: bar.update(task, description=text)
        except errors as exc:
            bar.stop()
            fail(f"{prefix}{exc}", EXIT_FAILED)


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
        with _spinner((RuntimeError,), prefix=f"{video}: ") as describe:
            result = bench_ingest(
                video, profile, threads, embedder, progress=lambda name: describe(f"phase {name}"), repeat=repeat
            )
        if json_out:
            print_json(result)
        else:
            _print_table(result)

    @app.command("retrieval")
    def retrieval_bench(
        video: Path = typer.Argument(..., help="Video to index twice (coarse and full) and search."),
        embedder: str = typer.Option(
            ..., "--embedder", help="Embedder spec, e.g. openclip:DIR or openclip:ViT-B-32/laion2b_s34b_b79k."
        ),
        queries: int = typer.Option(32, "--queries", min=1, max=10000, help="Query frames, at random times."),
        k: int = typer.Option(5, "-k", "--k", min=1, max=100, help="Hits per search."),
        seed: int = typer.Option(0, "--seed", help="Seed of the query times."),
        embed_max_frames: int | None = typer.Option(
            None,
            "--embed-max-frames",
            min=1,
            help="Keyframes the coarse index embeds when built (default: 128, what `foveate ask` embeds before a "
            "first answer).",
        ),
        json_out: bool = typer.Option(False, "--json", help="Print the figures as one JSON object."),
    ) -> None:
        """The coarse clip index `foveate ask` builds on a video not indexed yet (128 keyframes embedded up
        front, the rest where searches land) against the full one (every keyframe embedded) on VIDEO: build
        seconds and keyframes embedded, then frames at random times as queries, each on a fresh coarse index:
        recall@k of the clip holding each, agreement with the full index, and what each coarse search spent
        embedding."""
        from foveate.evals.bench import bench_retrieval
        from foveate.memory.errors import EmbedderError, VideoError

        setup_logging()
        if not video.is_file():
            fail(f"{video}: no such file", EXIT_USAGE)
        with _spinner((VideoError, EmbedderError)) as describe:
            result = bench_retrieval(
                video, embedder, queries, k, seed, progress=describe, embed_max_frames=embed_max_frames
            )
        if json_out:
            print_json(result)
            return
        for name in ("full", "coarse"):
            r = result[name]
            console.print(
                f"{name}: built in {r['build_seconds']:.1f} s, {r['embedded_at_build']} of {r['keyframes']} "
                f"keyframes embedded, {r['clips']} clips",
                highlight=False,
            )
        s = result["search"]
        console.print(
            f"{queries} frame queries, k={k}: recall@k full {s['recall_at_k_full']:.2f}, "
            f"coarse {s['recall_at_k_coarse']:.2f} ({s['recall_at_k_coarse_unrefined']:.2f} unrefined); "
            f"overlap with the full top-{k} {s['overlap_with_full']:.2f}, top-1 agreement {s['top1_agreement']:.2f}; "
            f"a coarse search {s['coarse_seconds_mean']:.2f} s on average (max {s['coarse_seconds_max']:.2f}), "
            f"embedding {s['coarse_keyframes_embedded_mean']:.1f} keyframes",
            highlight=False,
        )
