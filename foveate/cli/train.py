"""`foveate train sft|grpo|clip CONFIG`: train the controller (SFT, GRPO) or the clip embedder."""

from __future__ import annotations

import contextlib
import json
import logging
import os
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


def _steps_bar(label: str, disable: bool = False, info: bool = True):
    """The rich bar every training command shows: label, bar, n/total, elapsed, remaining (and the last figures)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    columns += [TimeRemainingColumn(), *([TextColumn("{task.fields[info]}")] if info else [])]
    return Progress(*columns, console=err_console, disable=disable, transient=False)


def trainer_progress(description: str):
    """A transformers TrainerCallback that shows a rich progress bar over optimizer steps and the last logs."""
    from rich.progress import Progress
    from transformers import TrainerCallback

    class RichProgress(TrainerCallback):
        def __init__(self) -> None:
            self.bar: Progress | None = None
            self.task = None

        def on_train_begin(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:  # under torchrun / accelerate launch one process shows progress
                return
            self.bar = _steps_bar(description)
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


@contextlib.contextmanager
def step_progress(description: str, disable: bool = False):
    """A rich progress bar over optimizer steps; yields ``progress(step, steps, loss=None)``."""
    with _steps_bar(description, disable) as bar:
        task = bar.add_task("steps", total=None, info="")

        def progress(step: int, steps: int, loss: float | None = None) -> None:
            bar.update(task, completed=step, total=steps, info="" if loss is None else f"loss {loss:.4g}")

        yield progress


@contextlib.contextmanager
def work_progress(description: str, disable: bool = False):
    """Yields ``progress(done, total)``: a rich bar that appears at the first call and goes when ``done`` reaches
    ``total`` (or the block ends), so that the training bar after it is the only one on screen."""
    bar = _steps_bar(description, disable, info=False)
    task = None

    def progress(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task("work", total=total)
        bar.update(task, completed=done, total=total)
        if done >= total:
            bar.stop()

    try:
        yield progress
    finally:
        bar.stop()


def _rank() -> int:
    """This process's global rank under torchrun / accelerate launch (0 when launched alone)."""
    return int(os.environ.get("RANK", "0"))


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
            elif kind == "pretrain":
                from foveate.training.pretrain import run_pretrain

                with step_progress("pretrain", disable=json_out) as progress:
                    result = run_pretrain(config, out, progress)
            elif kind == "sft":
                from foveate.training.sft import run_sft

                with work_progress("sft examples: questions", disable=json_out) as data_progress:
                    result = run_sft(config, out, [trainer_progress("sft")], data_progress)
            else:
                from foveate.training.grpo import run_grpo

                result = run_grpo(config, out, callbacks=[trainer_progress("grpo")])
        except (FoveateError, ValueError) as exc:
            fail(" ".join(str(exc).split()))
        except OSError as exc:
            fail(f"{getattr(exc, 'filename', None) or out}: {exc.strerror or exc}")
        if _rank() != 0:  # under torchrun / accelerate launch the first process alone reports
            return
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
        flag = "embedder" if kind == "clip" else "controller"  # pretrain, sft and grpo save a controller
        console.print(f"use it with --{flag} {safe_text(summary[flag])}", highlight=False, soft_wrap=True)

    def _run_clip(run_clip, config, out: Path, json_out: bool):
        with _steps_bar("clip {task.description}", json_out, info=False) as bar:
            tasks: dict[str, object] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)

            return run_clip(config, out, progress)

    docs = {
        "pretrain": """Pretraining of a small controller on data the synthetic world makes without decoding video.

        Reading: episodes in the agent's own chat and tool-call format that make the model copy the
        question's subject into a retrieve query and a clip's handle or times into a zoom call and
        into the answer's evidence. Seeing: a world frame -> its caption (caption_first_steps: captions
        only at first). Grounded episodes (mix.ground): a world question answered by the SFT oracle
        with frames rendered from the world, so the clip it picks and the option it answers follow
        what the frames show. Reports held-out copy, caption and grounded accuracy before and after.
        Writes OUTPUT/controller (use it as model.path of an SFT config, or with --controller) and
        OUTPUT/metrics.json.
        """,
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

    pipeline_doc = """The whole learning study in one resumable command.

        world -> embedder -> controller -> pretraining -> drill (on cpu: the copy of a colour, 250 steps) -> SFT
        -> GRPO -> select (the GRPO snapshot with the best mean reward on the val split, when the config's
        grpo_select_every is set; the presets: every 5 steps on cpu, 25 on gpu) -> the held-out test split
        answered by the untrained, pretrained, SFT and GRPO controllers and the uniform and retrieval
        baselines (the SFT model, the same frame budget, its frames fetched by zoom calls in the agent's
        episode) -> one eval report (OUTPUT/report: every policy also paired against SFT question by question,
        with the GRPO reward and the held-out pretraining skills by step as PNGs) and OUTPUT/results.json. A
        finished stage is skipped when the command is run again. Each long stage shows a progress bar on stderr.
        """

    @app.command("pipeline", help="\n\n".join(" ".join(par.split()) for par in pipeline_doc.split("\n\n")))
    def pipeline(
        preset: str = typer.Argument(
            ..., help="cpu (2 CPU cores), gpu (one GPU) or a YAML file of PipelineConfig fields.", metavar="PRESET"
        ),
        output_dir: Path = typer.Option(..., "--output-dir", "-o", help="Output folder; rerun it to resume."),
        seed: int | None = typer.Option(None, "--seed", help="Seed of the whole run (default: the preset's, 0)."),
        json_out: bool = typer.Option(
            False, "--json", help="Print the results as one JSON object on the last line of stdout."
        ),
        workers: int | None = typer.Option(
            None,
            "--workers",
            min=1,
            help="Processes that answer the val and test questions, one policy each at a time "
            "(default: one per CPU thread torch uses, 1 with a GPU). Training is not affected.",
        ),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
    ) -> None:
        setup_logging(verbose)
        if not verbose and logging.getLogger().level > logging.INFO:
            logging.getLogger("foveate.training").setLevel(logging.INFO)
        from foveate.memory.errors import FoveateError
        from foveate.training.config import ConfigError
        from foveate.training.pipeline import STAGES, load_pipeline_config, run_pipeline

        try:
            config = load_pipeline_config(preset, seed)
        except ConfigError as exc:
            fail(str(exc), EXIT_USAGE)

        def announce(stage: str) -> None:
            err_console.print(f"[bold]stage {STAGES.index(stage) + 1}/{len(STAGES)}: {stage}", highlight=False)

        try:
            summary = run_pipeline(
                config,
                output_dir,
                announce,
                callbacks=lambda stage: [trainer_progress(stage)],
                # on stderr, --json or not, as SFT's and GRPO's bars: stdout keeps the summary alone
                step_progress=step_progress,
                work_progress=work_progress,
                workers=workers,
            )
        except ConfigError as exc:
            fail(" ".join(str(exc).split()), EXIT_USAGE)
        except (FoveateError, ValueError, RuntimeError) as exc:
            fail(" ".join(str(exc).split()))
        except OSError as exc:
            fail(f"{getattr(exc, 'filename', None) or output_dir}: {exc.strerror or exc}")
        if json_out:
            print(json.dumps(summary, default=str))
            return
        _print_pipeline(summary, output_dir)

    spread_doc = """The spread over seeds of finished pipeline runs of one config.

        Per policy (untrained, pretrained, SFT, GRPO, the baselines) and held-out metric: each seed's
        value, the mean, the standard deviation and the range. Each seed draws its own worlds, so its own
        held-out questions, as well as its own init and training data. Runs of different configs, or of
        one seed twice, are refused. Example: foveate train pipeline cpu -o runs/s1 --seed 1, then
        foveate train spread runs/s0 runs/s1 runs/s2.
        """

    @app.command("spread", help="\n\n".join(" ".join(par.split()) for par in spread_doc.split("\n\n")))
    def spread(
        outputs: list[Path] = typer.Argument(
            ..., help="Two or more OUTPUT folders of finished `foveate train pipeline` runs.", metavar="OUTPUT..."
        ),
        json_out: bool = typer.Option(False, "--json", help="Print the spread as one JSON object on stdout."),
    ) -> None:
        from foveate.training.config import ConfigError
        from foveate.training.pipeline import seed_spread

        try:
            result = seed_spread(outputs)
        except ConfigError as exc:
            fail(str(exc), EXIT_USAGE)
        except (OSError, ValueError, KeyError) as exc:
            fail(f"cannot read the runs: {exc}")
        if json_out:
            print(json.dumps(result))
            return
        from rich.table import Table

        seeds = ", ".join(map(str, result["seeds"]))
        table = Table(title=f"held-out test over seeds {seeds} ({result['preset']})")
        for column in ("run", "metric", "mean ± sd", "range", "by seed"):
            table.add_column(column, justify="left" if column in ("run", "metric") else "right")
        for name, figures in result["policies"].items():
            for i, (metric, f) in enumerate(figures.items()):
                table.add_row(
                    name if i == 0 else "",
                    metric.replace("_", " "),
                    f"{f['mean']:.3g} ± {f['std']:.2g}",
                    f"[{f['min']:.3g}, {f['max']:.3g}]",
                    " ".join(f"{v:.3g}" for v in f["values"]),
                    end_section=i == len(figures) - 1,
                )
        console.print(table)

    def _print_pipeline(summary: dict, out: Path) -> None:
        from rich.table import Table

        from foveate.cli.evaluate import paired_line

        table = Table(title=f"held-out test ({summary['preset']}, seed {summary['seed']})")
        cols = ("accuracy", "evidence_iou", "looked_at_evidence", "frames_used", "tool_calls", "query_names_subject")
        table.add_column("run")
        for col in cols:
            table.add_column(col.replace("_", " "), justify="right")
        for name, run in summary["runs"].items():
            cells = [run.get(col) for col in cols]
            table.add_row(name, *("-" if v is None else f"{v:.3g}" for v in cells))
        console.print(table)
        grpo = summary["runs"].get("grpo", {}).get("vs_sft")
        if grpo:
            console.print(paired_line({"against": "sft", **grpo}, "grpo"), highlight=False)
        top = summary.get("retrieval_top1", {})
        console.print(
            f"top retrieved clip alone: looked at evidence {top.get('looked_at_evidence')}, "
            f"evidence IoU {top.get('evidence_iou')}; searched by the subject: top clip over the evidence "
            f"{top.get('subject_top1')}, one of the top 5 {top.get('subject_top5')}",
            highlight=False,
        )
        console.print(f"stage seconds: {summary['seconds']}", highlight=False)
        console.print(f"report: {safe_text(out / 'report')}", highlight=False)
