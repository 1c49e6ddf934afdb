"""`foveate bench ...`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from agent.cli.common import console, fail, print_json


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    def ingest_bench(
        video: Optional[Path] = typer.Argument(None, help="Video to benchmark (omit with --make)."),
        make: Optional[Path] = typer.Option(None, "--make", help="First write a synthetic camera-motion video here."),
        minutes: float = typer.Option(10.0, help="With --make: length in minutes."),
        size: str = typer.Option("1280x720", help="With --make: WIDTHxHEIGHT."),
        fps: int = typer.Option(30, help="With --make: frames per second."),
        json_out: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    ) -> None:
        """Overview throughput vs a full decode of the same file (measured in this run), and peak RSS."""
        from evals.bench import bench_ingest, make_pan_video

        if make is not None:
            w, h = (int(v) for v in size.lower().split("x"))
            video = make_pan_video(make, minutes, w, h, fps)
        if video is None or not video.exists():
            fail(f"{video}: no such file (give a VIDEO or --make PATH)", 2)
        result = bench_ingest(video)
        if json_out:
            print_json(result)
        else:
            for k, v in result.items():
                console.print(f"{k:>26}: {v}")
