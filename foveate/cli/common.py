"""Console, logging and error helpers shared by every command."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.logging import RichHandler

console = Console()
err_console = Console(stderr=True)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def setup_logging(verbose: bool = False) -> None:
    level = (
        logging.DEBUG
        if verbose
        else getattr(logging, os.environ.get("FOVEATE_LOG", "WARNING").upper(), logging.WARNING)
    )
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=err_console, show_path=False)]
    )


def print_json(obj: Any) -> None:
    """One JSON object per line on stdout (no rich markup, safe for scripts)."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print a one-line error to stderr and exit."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code)


def run_settings(controller: str | None, embedder: str | None, max_steps: int | None, max_frames: int | None):
    """(AgentConfig, IngestConfig, embedder) for ``ask``/``batch``: the controller's trained settings
    (announced on stderr) or the defaults, with the given flags applied; bad values exit with usage."""
    from foveate.agent.config import agent_settings

    try:
        agent, ingest, embedder, trained = agent_settings(
            controller, embedder, max_steps=max_steps, max_frames=max_frames
        )
    except ValueError as exc:  # pydantic's ValidationError: name the flag and the rule
        errors = getattr(exc, "errors", lambda: [])()
        fail(
            f"--{str(errors[0]['loc'][0]).replace('_', '-')}: {errors[0]['msg']}"
            if errors
            else str(exc).splitlines()[0],
            EXIT_USAGE,
        )
    if trained is not None:
        err_console.print(f"[dim]settings the controller was trained with: {trained.describe()}[/]", highlight=False)
    return agent, ingest, embedder
