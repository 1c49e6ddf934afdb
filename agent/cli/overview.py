"""`foveate overview`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from agent.cli.common import console, fail, print_json, setup_logging


def register(app: typer.Typer) -> None:
    @app.command("overview")
    def overview(
        video: Path = typer.Argument(..., help="Video file."),
        json_out: bool = typer.Option(False, "--json", help="Print the overview as JSON."),
        image: Optional[Path] = typer.Option(None, "--image", help="Write a PNG: motion timeline with cuts and a keyframe strip."),
        cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Cache root (default $FOVEATE_CACHE or ~/.cache/foveate)."),
        max_chars: int = typer.Option(4000, help="Character budget of the text view."),
    ) -> None:
        """Show the cheap compressed-stream overview of a video (no embeddings needed)."""
        from agent.cli.index import ingest_with_progress
        from memory.blocks import blocks_text
        from memory.errors import FoveateError

        setup_logging()
        try:
            mem = ingest_with_progress(video, cache_dir, None, embed=False)
        except FoveateError as exc:
            fail(str(exc))
        ov = mem.overview
        if image is not None:
            ov.plot(image)
        if json_out:
            print_json({"video": str(video), **ov.summary(), "keyframes": ov.keyframe_seconds, "image": str(image) if image else None})
        else:
            console.print(blocks_text(ov.render(max_images=0, max_chars=max_chars)), highlight=False, markup=False)
            if image is not None:
                console.print(f"wrote {image}")
