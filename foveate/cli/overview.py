"""`foveate overview`: the cheap compressed-stream overview of one video, as text, JSON or a picture."""

from __future__ import annotations

from pathlib import Path

import typer

from foveate.cli.common import console, fail, print_json, setup_logging, visible
from foveate.cli.index import CACHE_HELP


def _json_view(video: Path, mem, image: Path | None) -> dict:
    """The overview without its per-bin arrays (those are in the cache's overview.json)."""
    ov = mem.overview
    data = ov.model_dump(mode="json", exclude={"timeline"})
    return {
        "video": str(video),
        "duration_s": round(mem.duration_seconds, 3),
        "motion_source": ov.motion_source,
        "width": mem.info.display_size[0],
        "height": mem.info.display_size[1],
        "fps": round(mem.info.fps, 3),
        "codec": mem.info.codec,
        "n_segments": len(ov.segments),
        "n_cuts": len(ov.cuts_seconds),
        **{k: v for k, v in data.items() if k not in ("duration_seconds", "motion_source")},
        "cache_dir": str(mem.cache_dir),
        "image": str(image) if image else None,
    }


def register(app: typer.Typer) -> None:
    @app.command("overview")
    def overview(
        video: Path = typer.Argument(..., help="Video file."),
        json_out: bool = typer.Option(False, "--json", help="Print the overview as one JSON object."),
        image: Path | None = typer.Option(
            None, "--image", help="Also write a PNG: motion timeline with cuts and a keyframe strip."
        ),
        cache_dir: Path | None = typer.Option(None, "--cache-dir", help=CACHE_HELP),
        max_chars: int = typer.Option(4000, "--max-chars", min=200, help="Character budget of the text view."),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
    ) -> None:
        """Show the overview of a video: segments, motion, cuts, keyframes (no embedder needed)."""
        from foveate.cli.index import ingest_with_progress
        from foveate.memory.blocks import blocks_text
        from foveate.memory.indexing import one_line_error

        setup_logging(verbose)
        try:
            mem = ingest_with_progress(video, cache_dir, None, embed=False)
            if image is not None:
                mem.overview.plot(image)
        except Exception as exc:  # one line for any failure on a bad file, never a traceback
            fail(one_line_error(video, exc))
        if json_out:
            print_json(_json_view(video, mem, image))
            return
        console.print(
            visible(blocks_text(mem.overview.render(max_images=0, max_chars=max_chars))), highlight=False, markup=False
        )
        if image is not None:
            console.print(f"wrote {visible(image)}", highlight=False, markup=False)
