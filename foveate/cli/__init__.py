"""The ``foveate`` command line.

Each command group lives in its own module with a ``register(app)`` function; heavy imports
(torch, transformers, faiss, training, evals) happen inside the command bodies so ``--help``
stays fast.
"""

from __future__ import annotations

import typer

from foveate.cli import ask, batch, bench, evaluate, index, overview, synth, train

app = typer.Typer(
    name="foveate",
    help="Agentic question answering over long videos.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
synth_app = typer.Typer(help="Generate the synthetic long-video world and tiny local models.", no_args_is_help=True)
bench_app = typer.Typer(help="Speed and memory benchmarks.", no_args_is_help=True)
train_app = typer.Typer(
    help="Train the controller (sft, then grpo) or fine-tune the clip embedder (clip).", no_args_is_help=True
)

index.register(app)
overview.register(app)
ask.register(app)
batch.register(app)
evaluate.register(app)
synth.register(synth_app)
bench.register(bench_app)
train.register(train_app)

app.add_typer(synth_app, name="synth")
app.add_typer(bench_app, name="bench")
app.add_typer(train_app, name="train")


def main() -> None:
    app()
