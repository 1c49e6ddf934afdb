"""`foveate ask`."""

from __future__ import annotations

from pathlib import Path

import typer

from foveate.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    check_models,
    check_output_path,
    console,
    err_console,
    fail,
    interrupted,
    max_frames_option,
    max_steps_option,
    print_error,
    print_json,
    run_settings,
    safe_text,
    setup_logging,
    timeout_option,
    visible,
)
from foveate.cli.index import EMBEDDER_HELP


def _show_step(step) -> None:
    for turn in step.tool_turns:
        args = ", ".join(f"{k}={v}" for k, v in (turn.arguments or {}).items())
        status = f"[red]{safe_text(turn.error)}[/]" if turn.error else f"{turn.frames_spent} frames"
        name = safe_text(turn.name or "(malformed call)")
        err_console.print(f"  [cyan]{name}[/]({safe_text(args)}) -> {status}", highlight=False)
        if not turn.error:
            for line in turn.summary.splitlines()[1:4]:
                if line.strip() and not line.startswith("["):
                    err_console.print(f"      {visible(line)}", highlight=False, markup=False)


def _print_answer(traj, json_out: bool) -> None:
    ans = traj.answer
    if json_out:
        print_json(
            {
                "answer": ans.text,
                "choice": ans.choice,
                "evidence": [list(s) for s in ans.evidence],
                "frames_used": traj.frames_used,
                "tool_calls": traj.tool_calls,
                "steps": len(traj.steps),
                "latency_s": round(traj.latency_s, 3),
                "valid": ans.valid,
            }
        )
        return
    from foveate.memory.overview import format_time

    spans = ", ".join(f"{format_time(s)}-{format_time(e)}" for s, e in ans.evidence) or "none"
    choice = f"({safe_text(ans.choice)}) " if ans.choice else ""
    if not ans.valid:
        note = " [yellow](no valid answer format)[/]"
    elif traj.options and not ans.choice:
        note = f" [yellow](names none of the {len(traj.options)} options)[/]"
    else:
        note = ""
    console.print(f"[bold]Answer:[/] {choice}{safe_text(ans.text)}{note}", highlight=False)
    console.print(
        f"Evidence: {spans}   [dim]{traj.frames_used} frames, {traj.tool_calls} tool calls, {traj.latency_s:.1f}s[/]",
        highlight=False,
    )


def _write_trace(trace: Path | None, traj) -> bool:
    """Append ``traj`` to ``trace``; False (after one line on stderr) when that fails."""
    from foveate.agent.trajectory import write_trajectories

    if trace is None or traj is None:
        return True
    try:
        write_trajectories(trace, [traj])
    except OSError as exc:
        print_error(f"--trace {trace}: cannot write the trajectory ({exc.strerror or exc})")
        return False
    return True


def _answer_one(mem, ctl, config, question: str, options, json_out: bool, trace: Path | None) -> bool:
    """Answer, print, then record; True when all of it worked. A controller failure prints one line
    and records the steps done before it. KeyboardInterrupt propagates after recording them."""
    from foveate.agent.backends import ControllerError
    from foveate.agent.graph import answer_question

    try:
        traj = answer_question(mem, question, options, ctl, config, on_step=None if json_out else _show_step)
    except ControllerError as exc:
        partial = exc.trajectory
        if partial is not None:
            partial.error = str(exc)
        print_error(str(exc))
        _write_trace(trace, partial)
        return False
    except KeyboardInterrupt as exc:
        partial = getattr(exc, "trajectory", None)
        if partial is not None:
            partial.error = "interrupted"
        _write_trace(trace, partial)
        raise
    _print_answer(traj, json_out)  # before the trace, which can still fail
    return _write_trace(trace, traj)


def _session(video: Path, mem, answer) -> None:
    """Questions from stdin until an empty line, 'quit' or EOF; a failed or interrupted question
    ends only itself."""
    console.print(
        f"[bold]{safe_text(video.name)}[/] ({mem.duration_seconds:.0f}s) — ask questions; empty line or 'quit' ends.",
        highlight=False,
    )
    while True:
        try:
            q = console.input("[bold green]? [/]").strip()
        except EOFError:
            break
        except KeyboardInterrupt:
            interrupted()
        if not q or q.lower() in ("quit", "exit"):
            break
        try:
            answer(q)
        except KeyboardInterrupt:
            err_console.print("interrupted", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    @app.command("ask")
    def ask(
        video: Path = typer.Argument(..., help="Video file."),
        question: str | None = typer.Argument(None, help="The question; omit it for an interactive session."),
        option: list[str] = typer.Option(
            [], "--option", help="A multiple-choice option (repeat, in order: A, B, ...)."
        ),
        controller: str | None = typer.Option(
            None, "--controller", help="HF model id, local model directory, or openai:MODEL@URL."
        ),
        embedder: str | None = typer.Option(None, "--embedder", help=EMBEDDER_HELP),
        max_steps: int | None = max_steps_option(),
        max_frames: int | None = max_frames_option(),
        cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Cache root."),
        json_out: bool = typer.Option(False, "--json", help="Print the answer as JSON."),
        trace: Path | None = typer.Option(None, "--trace", help="Append the trajectory (JSONL) here."),
        timeout: float = timeout_option(),
        embed_max_frames: int = typer.Option(
            128,
            "--embed-max-frames",
            min=0,
            help="On a long video not indexed yet: keyframes embedded before the first answer (the first after "
            "each scene cut, the rest evenly spread); retrieval embeds the others where it lands, and `foveate "
            "index` embeds them all. 0: embed every keyframe first.",
        ),
    ) -> None:
        """Answer a question about a video, citing time spans as evidence."""
        from foveate.agent.answer import LETTERS
        from foveate.agent.backends import DEFAULT_CONTROLLER, load_controller
        from foveate.cli.index import ingest_with_progress
        from foveate.memory.errors import FoveateError

        setup_logging()
        if option and question is None:
            fail(
                "--option needs a QUESTION: options belong to one question (the interactive session takes "
                "open questions)",
                2,
            )
        if len(option) > len(LETTERS):
            fail(f"--option given {len(option)} times; at most {len(LETTERS)} options (A-{LETTERS[-1]})", 2)
        if trace is not None:
            check_output_path(trace, "--trace")
        if not video.is_file():  # before the models: a mistyped path is the first thing to hear about
            fail(f"{video}: {'is a directory' if video.is_dir() else 'no such file'}", EXIT_USAGE)
        spec = DEFAULT_CONTROLLER if controller is None else controller
        if not spec.strip():
            fail("--controller is empty; give a Hugging Face id, a model directory or openai:MODEL@URL", 2)
        config, ingest_config, embedder = run_settings(spec, embedder, max_steps, max_frames)
        ingest_config = ingest_config.model_copy(update={"embed_max_frames": embed_max_frames or None})
        check_models(spec, embedder)
        try:
            mem = ingest_with_progress(video, cache_dir, embedder, config=ingest_config)
            ctl = load_controller(spec, timeout=timeout)
        except FoveateError as exc:
            fail(str(exc))
        except ValueError as exc:
            fail(str(exc).splitlines()[0], 2)
        except KeyboardInterrupt:
            interrupted()

        if question is None:
            _session(video, mem, lambda q: _answer_one(mem, ctl, config, q, None, json_out, trace))
            return
        try:
            ok = _answer_one(mem, ctl, config, question, option or None, json_out, trace)
        except KeyboardInterrupt:
            interrupted()
        if not ok:
            raise typer.Exit(EXIT_FAILED)
