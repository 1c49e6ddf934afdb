"""Seconds per SFT step of a pipeline run, with TRL's loss and with the shared-prompt loss.

    python -m foveate.training.sft_step RUN [--steps 30]

RUN is a pipeline run folder whose SFT stage has written its examples (RUN/sft/data; the stage need not
have finished). In one process, the run's SFT starting controller is trained for ``--steps`` steps on
those examples twice, on the same batches in the same order: first with TRL's own loss (one forward
over the padded batch), then with the shared-prompt loss (training/prefix.py, the pipeline's default).
Each includes rendering its examples once, as the first epoch of the stage does. Prints one JSON
object: seconds per step of each, their ratio and both loss curves (equal up to float rounding).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def time_sft(run: Path, steps: int = 30) -> dict:
    import torch

    from foveate.training.episodes import load_examples
    from foveate.training.pipeline import PipelineConfig, trainer_fields
    from foveate.training.sft import sft_args, sft_trainer

    config = PipelineConfig(**json.loads((run / "config.json").read_text()))
    embedder = json.loads((run / "clip" / "metrics.json").read_text())["embedder"]
    examples = load_examples(run / "sft" / "data")
    fields = {**trainer_fields(torch.cuda.is_available()), "max_steps": steps, "logging_steps": 1}
    result: dict = {"run": str(run), "steps": steps, "batch": config.sft_batch}
    result["torch_threads"] = torch.get_num_threads()
    for shared in (False, True):
        sft = config.sft_config(run, embedder, fields).model_copy(update={"shared_prefix": shared})
        with tempfile.TemporaryDirectory() as tmp:
            trainer, _ = sft_trainer(sft, sft_args(sft, Path(tmp)), sft.model.path, examples)
            start = time.perf_counter()
            trainer.train()
            seconds = time.perf_counter() - start
        name = "shared_prompt" if shared else "trl"
        result[f"{name}_seconds_per_step"] = round(seconds / steps, 3)
        result[f"{name}_losses"] = [round(h["loss"], 4) for h in trainer.state.log_history if "loss" in h]
    result["speedup"] = round(result["trl_seconds_per_step"] / result["shared_prompt_seconds_per_step"], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a pipeline run folder with RUN/sft/data")
    parser.add_argument("--steps", type=int, default=30, help="steps timed with each loss (default: 30)")
    args = parser.parse_args()
    if not (args.run / "sft" / "data" / "examples.jsonl").is_file():
        parser.error(f"{args.run}: no SFT examples (RUN/sft/data/examples.jsonl); run its SFT stage first")
    print(json.dumps(time_sft(args.run, args.steps)))


if __name__ == "__main__":
    main()
