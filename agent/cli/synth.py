"""`foveate synth world|models`."""

from __future__ import annotations

from pathlib import Path

import typer

from agent.cli.common import console, err_console, fail


def register(app: typer.Typer) -> None:
    @app.command("world")
    def world(
        out: Path = typer.Argument(..., help="Output folder: videos/, events/, manifest.jsonl."),
        videos: int = typer.Option(2, "--videos", help="Number of videos."),
        minutes: float = typer.Option(3.0, "--minutes", help="Length of each video, minutes (1-120)."),
        seed: int = typer.Option(0, "--seed", help="Seed offset inside the split's seed range."),
        split: str = typer.Option("train", "--split", help="train, val or test (disjoint seed ranges)."),
        questions: int = typer.Option(6, "--questions-per-video", help="Questions per video."),
        fps: int = typer.Option(10, "--fps", help="Frames per second."),
        size: str = typer.Option("320x240", "--size", help="WIDTHxHEIGHT."),
    ) -> None:
        """Generate synthetic long videos with ground-truth event logs and a question manifest."""
        from rich.progress import Progress

        from evals.synthetic.generate import generate_world

        if not 0 < minutes <= 120:
            fail("--minutes must be in (0, 120]", 2)
        try:
            w, h = (int(v) for v in size.lower().split("x"))
        except ValueError:
            fail(f"--size {size!r}: expected WIDTHxHEIGHT", 2)
        with Progress(console=err_console) as bar:
            task = bar.add_task("rendering", total=videos)
            try:
                manifest = generate_world(out, videos, minutes, seed, split, questions, fps, (w, h), lambda i: bar.update(task, completed=i))
            except ValueError as exc:
                fail(str(exc), 2)
        console.print(f"wrote {videos} videos and {manifest}")

    @app.command("models")
    def models(out: Path = typer.Argument(..., help="Output folder: OUT/controller and OUT/embedder.")) -> None:
        """Write tiny randomly initialised local models (no download) for trying and testing every code path."""
        from evals.synthetic.models import build_tiny_models

        paths = build_tiny_models(out)
        console.print(f"controller: {paths['controller']}\nembedder:   {paths['embedder']}\n"
                      f"use: --controller {paths['controller']} --embedder openclip:{paths['embedder']}")
