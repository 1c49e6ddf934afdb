"""`foveate synth world|models`: the synthetic long-video world and tiny local models."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from foveate.cli.common import EXIT_USAGE, console, err_console, fail, print_json, safe_text


def _parse_size(size: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        fail(f"--size {size!r}: expected WIDTHxHEIGHT, e.g. 320x240", EXIT_USAGE)
    return w, h


def register(app: typer.Typer) -> None:
    @app.command("world")
    def world(
        out: Path = typer.Argument(..., help="Output folder: videos/, events/ and manifest.jsonl go here."),
        videos: int = typer.Option(2, "--videos", help="Number of videos."),
        minutes: float = typer.Option(3.0, "--minutes", help="Length of each video in minutes (up to 120)."),
        seed: int = typer.Option(0, "--seed", help="Seed offset inside the split's seed range (0-9999)."),
        split: str = typer.Option("train", "--split", help="train, val or test: disjoint seed ranges."),
        questions: int = typer.Option(
            6, "--questions-per-video", help="Questions per video (spread over the task families)."
        ),
        fps: int = typer.Option(10, "--fps", help="Frames per second."),
        size: str = typer.Option("320x240", "--size", help="Frame size WIDTHxHEIGHT (even numbers)."),
        no_pan: bool = typer.Option(False, "--no-pan", help="Keep the camera still in every scene."),
        workers: int = typer.Option(
            0,
            "--workers",
            min=0,
            help="Videos rendered at a time, each in its own process (the same files as one at a time); "
            "0: one per CPU core.",
        ),
        json_out: bool = typer.Option(False, "--json", help="Print a JSON summary instead of text."),
    ) -> None:
        """Generate synthetic long videos with ground-truth event logs and a multiple-choice question manifest."""
        from pydantic import ValidationError
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        from foveate.evals.synthetic.world import WorldConfig, cpu_count, generate_world, video_seed

        w, h = _parse_size(size)
        started = time.perf_counter()
        columns = (
            TextColumn("[bold]rendering"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        try:
            WorldConfig(
                minutes=minutes, fps=fps, width=w, height=h, pan=not no_pan
            )  # settle bad settings before the bar shows
            if videos < 1:
                raise ValueError(f"--videos must be >= 1, got {videos}")
            video_seed(split, seed, videos - 1)
            with Progress(*columns, console=err_console, transient=json_out, disable=json_out) as bar:
                task = bar.add_task("videos", total=videos)
                manifest = generate_world(
                    out,
                    videos,
                    minutes,
                    seed,
                    split,
                    questions,
                    fps,
                    (w, h),
                    progress=lambda done: bar.update(task, completed=done),
                    pan=not no_pan,
                    workers=workers or cpu_count(),
                )
        except ValidationError as exc:
            err = exc.errors()[0]
            fail(f"invalid world setting {'.'.join(map(str, err['loc'])) or ''}: {err['msg']}", EXIT_USAGE)
        except ValueError as exc:
            fail(str(exc), EXIT_USAGE)
        except OSError as exc:
            fail(f"{out}: {exc.strerror or exc}")
        rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
        tasks: dict[str, int] = {}
        for r in rows:
            tasks[r.get("task", "?")] = tasks.get(r.get("task", "?"), 0) + 1
        summary = {
            "out": str(out),
            "videos": videos,
            "minutes": minutes,
            "split": split,
            "manifest": str(manifest),
            "questions": len(rows),
            "tasks": tasks,
            "seconds": round(time.perf_counter() - started, 2),
        }
        if json_out:
            print_json(summary)
            return
        console.print(
            f"wrote {videos} video(s) of {minutes:g} min to {safe_text(out / 'videos')}, "
            f"event logs to {safe_text(out / 'events')}",
            highlight=False,
        )
        console.print(
            f"{len(rows)} questions in {safe_text(manifest)} "
            f"({', '.join(f'{k} {v}' for k, v in sorted(tasks.items()))}) "
            f"in {summary['seconds']:.1f} s",
            highlight=False,
        )

    @app.command("models")
    def models(
        out: Path = typer.Argument(..., help="Output folder: OUT/controller and OUT/embedder."),
        json_out: bool = typer.Option(False, "--json", help="Print the paths as JSON."),
    ) -> None:
        """Write tiny randomly initialised local models (no download) to try and test every code path."""
        from foveate.evals.synthetic.models import build_tiny_models

        try:
            paths = build_tiny_models(out)
        except OSError as exc:
            fail(f"{out}: {exc.strerror or exc}")
        controller, embedder = paths["controller"], paths["embedder"]
        if json_out:
            print_json({"controller": str(controller), "embedder": f"openclip:{embedder}"})
            return
        controller, embedder = safe_text(controller), safe_text(embedder)
        console.print(f"controller: {controller}\nembedder:   {embedder}", highlight=False)
        console.print(
            "These are untrained: they exercise the code, they do not answer well. Use them with\n"
            f'  foveate ask VIDEO "question" --controller {controller} --embedder openclip:{embedder}\n'
            f"  foveate batch MANIFEST --out PRED --controller {controller} --embedder openclip:{embedder}",
            highlight=False,
            soft_wrap=True,
        )
