"""`foveate ask`."""

from __future__ import annotations

from pathlib import Path

import typer

from foveate.cli.common import console, err_console, fail, print_json, run_settings, setup_logging
from foveate.cli.index import EMBEDDER_HELP


def _show_step(step) -> None:
    for turn in step.tool_turns:
        args = ", ".join(f"{k}={v}" for k, v in (turn.arguments or {}).items())
        status = f"[red]{turn.error}[/]" if turn.error else f"{turn.frames_spent} frames"
        name = turn.name or "(malformed call)"
        err_console.print(f"  [cyan]{name}[/]({args}) -> {status}", highlight=False)
        if not turn.error:
            for line in turn.summary.splitlines()[1:4]:
                if line.strip() and not line.startswith("["):
                    err_console.print(f"      {line}", highlight=False, markup=False)


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
        max_steps: int | None = typer.Option(
            None,
            "--max-steps",
            min=1,
            max=64,
            show_default=False,
            help="Controller turns before a final answer is forced "
            "(default 6, or the setting the controller was trained with).",
        ),
        max_frames: int | None = typer.Option(
            None,
            "--max-frames",
            min=0,
            max=512,
            show_default=False,
            help="Frames the tools may spend per question "
            "(default 48, or the setting the controller was trained with).",
        ),
        cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Cache root."),
        json_out: bool = typer.Option(False, "--json", help="Print the answer as JSON."),
        trace: Path | None = typer.Option(None, "--trace", help="Append the trajectory (JSONL) here."),
    ) -> None:
        """Answer a question about a video, citing time spans as evidence."""
        from foveate.agent.backends import DEFAULT_CONTROLLER, load_controller
        from foveate.agent.graph import answer_question
        from foveate.agent.trajectory import write_trajectories
        from foveate.cli.index import ingest_with_progress
        from foveate.memory.errors import FoveateError

        setup_logging()
        config, ingest_config, embedder = run_settings(controller, embedder, max_steps, max_frames)
        try:
            mem = ingest_with_progress(video, cache_dir, embedder, config=ingest_config)
            ctl = load_controller(controller or DEFAULT_CONTROLLER)
        except FoveateError as exc:
            fail(str(exc))
        except ValueError as exc:
            fail(str(exc).splitlines()[0], 2)

        def run(q: str, opts: list[str] | None) -> None:
            traj = answer_question(mem, q, opts, ctl, config, on_step=None if json_out else _show_step)
            if trace:
                write_trajectories(trace, [traj])
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
            else:
                from foveate.memory.overview import format_time

                spans = ", ".join(f"{format_time(s)}-{format_time(e)}" for s, e in ans.evidence) or "none"
                choice = f"({ans.choice}) " if ans.choice else ""
                console.print(
                    f"[bold]Answer:[/] {choice}{ans.text}"
                    + ("" if ans.valid else " [yellow](no valid answer format)[/]"),
                    highlight=False,
                )
                console.print(
                    f"Evidence: {spans}   [dim]{traj.frames_used} frames, {traj.tool_calls} tool calls, "
                    f"{traj.latency_s:.1f}s[/]"
                )

        if question is not None:
            run(question, option or None)
            return
        console.print(
            f"[bold]{video.name}[/] ({mem.duration_seconds:.0f}s) — ask questions; empty line or 'quit' ends."
        )
        while True:
            try:
                q = console.input("[bold green]? [/]").strip()
            except EOFError:
                break
            if not q or q.lower() in ("quit", "exit"):
                break
            run(q, None)
