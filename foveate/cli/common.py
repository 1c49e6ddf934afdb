"""Console, logging and error helpers shared by every command."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.text import Text

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


# C0 and C1 control characters except newline and tab: a model's ESC or NUL must not reach the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(value: Any) -> str:
    """``str(value)`` with control characters other than newline and tab written as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def safe_text(value: Any) -> str:
    """Text from a model, a file name or a user, ready to embed in rich markup: printed as itself,
    never read as markup (``[/INST]`` stays ``[/INST]``), control characters made visible."""
    return escape(visible(value))


def print_error(message: str) -> None:
    """One ``error: ...`` line on stderr; ``message`` is plain text, never markup."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", visible(message)), highlight=False, soft_wrap=True)


EXIT_INTERRUPTED = 130  # the shell's code for a command ended by SIGINT


def interrupted() -> NoReturn:
    """Ctrl-C: say so on stderr and exit 130 (click would print 'Aborted!' and exit 1)."""
    err_console.print("interrupted", highlight=False, markup=False)
    raise typer.Exit(EXIT_INTERRUPTED)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print a one-line error to stderr and exit."""
    print_error(message)
    raise typer.Exit(code)


def check_output_path(path: Path, flag: str) -> None:
    """Exit with one line unless ``path`` can be written (appended to): checked before any work starts."""
    if path.is_dir():
        fail(f"{flag} {path}: is a directory; give a file path")
    parent = path.parent
    if not parent.is_dir():
        fail(f"{flag} {path}: the folder {parent} does not exist")
    if path.exists() and not os.access(path, os.W_OK):
        fail(f"{flag} {path}: the file is not writable")
    if not path.exists() and not os.access(parent, os.W_OK | os.X_OK):
        fail(f"{flag} {path}: the folder {parent} is not writable")


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


def check_models(controller: str, embedder: str | None) -> None:
    """Exit with one line per model that cannot be loaded here, both at once, before any indexing: cheap
    checks of both specs, local folders and the local Hugging Face cache (no model is loaded)."""
    from foveate.agent.backends import ControllerError, check_controller
    from foveate.memory.embedder import DEFAULT_EMBEDDER, check_embedder
    from foveate.memory.errors import EmbedderError

    problems = []
    for check, spec in ((check_controller, controller), (check_embedder, embedder or DEFAULT_EMBEDDER)):
        try:
            check(spec)
        except (ControllerError, EmbedderError) as exc:
            problems.append(str(exc))
    for problem in problems[:-1]:
        print_error(problem)
    if problems:
        fail(problems[-1])


# Options ask and batch share: declared once so their bounds and help cannot drift apart.
def max_steps_option(agent_policy_only: bool = False):
    lead = "Agent: controller" if agent_policy_only else "Controller"
    return typer.Option(
        None,
        "--max-steps",
        min=1,
        max=64,
        show_default=False,
        help=f"{lead} turns before a final answer is forced (default 6, or the setting the controller was "
        "trained with).",
    )


def max_frames_option(agent_policy_only: bool = False):
    lead = "Agent: frames" if agent_policy_only else "Frames"
    return typer.Option(
        None,
        "--max-frames",
        min=0,
        max=512,
        show_default=False,
        help=f"{lead} the tools may spend per question (default 48, or the setting the controller was trained with).",
    )


# openai_backend.DEFAULT_TIMEOUT_SECONDS, kept literal: importing the backends at every command's start costs ~35 ms
CONTROLLER_TIMEOUT_SECONDS = 120.0


def timeout_option():
    return typer.Option(
        CONTROLLER_TIMEOUT_SECONDS,
        "--timeout",
        min=0.1,
        help="Seconds an openai:MODEL@URL controller has to answer one request (tried up to 3 times).",
    )
