"""`foveate train sft|grpo|clip CONFIG`: train the controller (SFT, GRPO) or the clip embedder."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import typer

from foveate.cli.common import EXIT_USAGE, console, err_console, fail, print_json, safe_text, setup_logging

CONFIG_HELP = (
    "A YAML run config, or the name of one in training/configs/ (tiny_sft, tiny_grpo, tiny_clip, "
    "qwen25vl_sft, qwen25vl_grpo, vitb32_clip). Relative paths inside it resolve against its folder."
)
OUTPUT_HELP = "Output folder (overrides the config's output_dir; default runs/<config name> in the working directory)."


def resolve_config_path(name: str) -> Path:
    """A path to an existing file, else a packaged config by name (with or without .yaml)."""
    from foveate.training.config import ConfigError, packaged_configs

    path = Path(name)
    if path.is_file():
        return path
    packaged = packaged_configs()
    stem = path.name.removesuffix(".yaml")
    if stem in packaged and len(path.parts) == 1:
        return packaged[stem]
    raise ConfigError(f"{name}: no such config file, and not a packaged config ({', '.join(packaged)})")


def trainer_progress(description: str):
    """A transformers TrainerCallback that shows a rich progress bar over optimizer steps and the last logs."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from transformers import TrainerCallback

    class RichProgress(TrainerCallback):
        def __init__(self) -> None:
            self.bar: Progress | None = None
            self.task = None

        def on_train_begin(self, args, state, control, **kwargs):
            self.bar = Progress(
                TextColumn(f"[bold]{description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=err_console,
                transient=False,
            )
            self.bar.start()
            self.task = self.bar.add_task("steps", total=state.max_steps, info="")

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(self.task, completed=state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.bar is None or not logs:
                return
            shown = [
                (k, logs[k])
                for k in ("loss", "reward", "tools/rollouts_with_call", "tools/parse_failure_rate")
                if k in logs
            ]
            self.bar.update(self.task, info="  ".join(f"{k.split('/')[-1]} {v:.4g}" for k, v in shown))

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.stop()
                self.bar = None

    return RichProgress()


def register(app: typer.Typer) -> None:
    def run(
        kind: str, config_name: str, output_dir: Path | None, json_out: bool, verbose: bool, overrides: list[str]
    ) -> None:
        setup_logging(verbose)
        if not verbose and logging.getLogger().level > logging.INFO:
            logging.getLogger("foveate.training").setLevel(logging.INFO)
        from foveate.memory.errors import FoveateError
        from foveate.training.config import ConfigError, load_config, output_dir_for

        try:
            path = resolve_config_path(config_name)
            config = load_config(path, kind, overrides)
        except ConfigError as exc:
            fail(str(exc), EXIT_USAGE)
        out = output_dir_for(config, path, output_dir)
        started = time.perf_counter()
        try:
            if kind == "clip":
                from foveate.training.clip import run_clip

                result = _run_clip(run_clip, config, out, json_out)
            elif kind == "sft":
                from foveate.training.sft import run_sft

                result = run_sft(config, out, callbacks=[trainer_progress("sft")])
            else:
                from foveate.training.grpo import run_grpo

                result = run_grpo(config, out, callbacks=[trainer_progress("grpo")])
        except (FoveateError, ValueError) as exc:
            fail(" ".join(str(exc).split()))
        except OSError as exc:
            fail(f"{getattr(exc, 'filename', None) or out}: {exc.strerror or exc}")
        summary = {
            "kind": kind,
            "config": str(path),
            "output_dir": str(out),
            **result.summary(),
            "seconds": round(time.perf_counter() - started, 1),
        }
        if json_out:
            print_json(summary)
            return
        for key, value in summary.items():
            console.print(f"{key:>14}: {safe_text(value)}", highlight=False, soft_wrap=True)
        flag = "embedder" if kind == "clip" else "controller"
        console.print(f"use it with --{flag} {safe_text(summary[flag])}", highlight=False, soft_wrap=True)

    def _run_clip(run_clip, config, out: Path, json_out: bool):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = (
            TextColumn("[bold]clip {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=err_console, disable=json_out) as bar:
            tasks: dict[str, object] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)

            return run_clip(config, out, progress)

    docs = {
        "sft": """Supervised fine-tuning of the controller on oracle and recorded trajectories (TRL SFTTrainer).

        Writes OUTPUT/controller (load it with --controller), OUTPUT/data (the rendered examples)
        and OUTPUT/train_log.json.
        """,
        "grpo": """GRPO of the controller with the agent's tools as the environment (TRL GRPOTrainer).

        Rewards (correctness, format, evidence IoU, frame penalty) are weighted in the config and
        logged one by one with the tool-call rate and parse-failure rate. Writes OUTPUT/controller
        and OUTPUT/train_log.json.
        """,
        "clip": """Contrastive fine-tuning of the OpenCLIP clip embedder on (frame, caption) pairs of the world.

        Reports retrieval R@1 on a held-out world before and after. Writes OUTPUT/embedder (load it
        with --embedder openclip:OUTPUT/embedder) and OUTPUT/metrics.json.
        """,
    }

    def command(kind: str):
        def train_command(
            config: str = typer.Argument(..., help=CONFIG_HELP),
            output_dir: Path = typer.Option(None, "--output-dir", "-o", help=OUTPUT_HELP),
            json_out: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
            verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
            overrides: list[str] = typer.Option(
                [],
                "--set",
                metavar="KEY=VALUE",
                help="Override a config field (repeatable; dotted keys, YAML values), "
                "e.g. --set trl.learning_rate=3e-4 --set world.videos=4.",
            ),
        ) -> None:
            run(kind, config, output_dir, json_out, verbose, overrides)

        train_command.__doc__ = "\n\n".join(" ".join(par.split()) for par in docs[kind].split("\n\n"))
        return train_command

    for kind in docs:
        app.command(kind)(command(kind))
