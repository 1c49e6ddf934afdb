"""Does the controller learn where to look? The end-to-end learning run behind docs/results.md.

On the synthetic world: generate train/val/test splits, fine-tune the tiny clip embedder, build a
small controller from scratch (random init), SFT it on oracle trajectories, then GRPO it with the
tools as environment; answer the held-out test split with the untrained model, the SFT model, the
GRPO model, and the uniform and retrieval baselines (GRPO model, same frame budget); score all
of them with ``foveate eval`` into one report.

    python -m foveate.training.learning OUT --preset gpu    # one GPU, ~10 minutes
    python -m foveate.training.learning OUT --preset cpu    # a reduced run on 2 CPU cores, ~20 minutes

Every stage skips itself when its output exists, so an interrupted run resumes. Writes
OUT/results.json (the figures and each stage's seconds) and OUT/report/ (metrics.json,
report.md, plots).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

logger = logging.getLogger("foveate.training.learning")

AGENT = {"max_steps": 4, "max_frames": 16, "overview_images": 2, "overview_chars": 800}
INGEST = {"thumbnail_max_side": 64, "embed_max_side": 128}
SIZE = {"width": 160, "height": 120}

PRESETS: dict[str, dict] = {
    # The CPU preset trains on the oracle's retrieved-clip paths (every number it writes is one the
    # retrieve result shows): 32 train videos x 16 questions, 2 paths each, about 650 episodes.
    "cpu": {
        "train_videos": 32,
        "test_videos": 4,
        "minutes": 1.0,
        "questions": 16,
        "hidden": 128,
        "layers": 2,
        "vocab": 2048,
        "schemas_in_vocab": True,
        "clip_epochs": 20,
        "sft_epochs": 5,
        "sft_batch": 4,
        "sft_lr": 3e-3,
        "sft_warmup": 20,
        "paths": 2,
        "oracle": {"look_at": "retrieved", "p_thought": 1.0, "p_dense": 0.0},
        "grpo_steps": 20,
        "grpo_batch": 8,
        "grpo_generations": 4,
        "grpo_lr": 5e-5,
    },
    "gpu": {
        "train_videos": 12,
        "test_videos": 2,
        "minutes": 2.0,
        "questions": 8,
        "hidden": 256,
        "layers": 4,
        "vocab": 1024,
        "schemas_in_vocab": False,
        "clip_epochs": 20,
        "sft_epochs": 40,
        "sft_batch": 8,
        "sft_lr": 2e-3,
        "sft_warmup": 10,
        "paths": 1,
        "oracle": {},
        "grpo_steps": 16,
        "grpo_batch": 8,
        "grpo_generations": 4,
        "grpo_lr": 5e-6,
    },
}


def _stage(results: dict, name: str, started: float) -> None:
    results.setdefault("seconds", {})[name] = round(time.perf_counter() - started, 1)
    logger.info("%s done in %.1f s", name, results["seconds"][name])


def run(out: Path, preset: str, device_note: str = "") -> dict:
    import torch

    from foveate.agent.config import AgentConfig
    from foveate.evals.synthetic.tiny_controller import build_tiny_controller
    from foveate.evals.synthetic.world import generate_world
    from foveate.memory.config import IngestConfig
    from foveate.training.clip import run_clip
    from foveate.training.config import ClipRunConfig, GRPORunConfig, SFTRunConfig
    from foveate.training.grpo import run_grpo
    from foveate.training.sft import run_sft

    p = PRESETS[preset]
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "preset": preset,
        "settings": p,
        "agent": AGENT,
        "ingest": INGEST,
        "device": device_note or (torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"),
    }
    cuda = torch.cuda.is_available()
    trl_common = {
        "report_to": "none",
        "save_strategy": "no",
        "logging_steps": 5,
        "gradient_checkpointing": False,
        "bf16": False,
        **({} if cuda else {"use_cpu": True}),
    }  # fp32: bf16 GRPO on this small a model hit NaN gradients

    # worlds
    t = time.perf_counter()
    worlds = {"train": (p["train_videos"], 0), "val": (2, 0), "test": (p["test_videos"], 0)}
    for split, (videos, seed) in worlds.items():
        if not (out / split / "manifest.jsonl").is_file():
            generate_world(
                out / split, videos, p["minutes"], seed, split, p["questions"], 10, (SIZE["width"], SIZE["height"])
            )
    _stage(results, "worlds", t)

    # embedder
    t = time.perf_counter()
    clip_cfg = ClipRunConfig(
        embedder="tiny",
        world={"dir": out / "train"},
        eval_world={"dir": out / "val"},
        frames_per_event=4,
        frame_max_side=128,
        epochs=p["clip_epochs"],
        batch_size=64,
        learning_rate=5e-4,
    )
    if not (out / "clip" / "metrics.json").is_file():
        run_clip(clip_cfg, out / "clip")
    results["clip"] = json.loads((out / "clip" / "metrics.json").read_text())
    embedder = results["clip"]["embedder"]
    _stage(results, "clip", t)

    # controller from scratch
    init = out / "models" / "controller"
    if not (init / "config.json").is_file():
        build_tiny_controller(
            init,
            seed=0,
            hidden_size=p["hidden"],
            layers=p["layers"],
            vocab_size=p["vocab"],
            tool_schemas_in_vocab=p["schemas_in_vocab"],
        )

    # SFT
    t = time.perf_counter()
    common = {
        "embedder": embedder,
        "lora": {"enabled": False},
        "world": {"dir": out / "train"},
        "agent": AGENT,
        "ingest": INGEST,
    }
    if not (out / "sft" / "controller" / "config.json").is_file():
        data = {"oracle_paths_per_question": p["paths"], "cache_rendered": True, "oracle": p["oracle"]}
        sft_cfg = SFTRunConfig(
            model={"path": str(init), "dtype": "float32"},
            data=data,
            trl={
                **trl_common,
                "num_train_epochs": p["sft_epochs"],
                "per_device_train_batch_size": p["sft_batch"],
                "learning_rate": p["sft_lr"],
                "lr_scheduler_type": "cosine",
                "warmup_steps": p["sft_warmup"],
            },
            **common,
        )
        sft = run_sft(sft_cfg, out / "sft")
        results["sft"] = sft.summary()
    _stage(results, "sft", t)

    # GRPO
    t = time.perf_counter()
    if not (out / "grpo" / "controller" / "config.json").is_file():
        grpo_cfg = GRPORunConfig(
            model={"path": str(out / "sft" / "controller"), "dtype": "float32"},
            generation="transformers",
            trl={
                **trl_common,
                "logging_steps": 1,
                "max_steps": p["grpo_steps"],
                "per_device_train_batch_size": p["grpo_batch"],
                "num_generations": p["grpo_generations"],
                # TRL counts tool results in the completion: retrieve + zoom + answer must fit
                "max_completion_length": 768,
                "temperature": 0.7,
                "learning_rate": p["grpo_lr"],
                "beta": 0.0,
            },
            **common,
        )
        grpo = run_grpo(grpo_cfg, out / "grpo")
        results["grpo"] = grpo.summary()
    log = json.loads((out / "grpo" / "train_log.json").read_text())
    keys = (
        "reward",
        "rewards/correct/mean",
        "rewards/format/mean",
        "rewards/evidence_iou/mean",
        "rewards/frame_penalty/mean",
        "tools/call_frequency",
        "tools/parse_failure_rate",
    )
    results["grpo_curve"] = [{k: h[k] for k in ("step", *keys) if k in h} for h in log if "reward" in h]
    _stage(results, "grpo", t)

    # answer the test split
    t = time.perf_counter()
    runs = [
        ("untrained", init, "agent"),
        ("sft", out / "sft" / "controller", "agent"),
        ("grpo", out / "grpo" / "controller", "agent"),
        ("uniform", out / "grpo" / "controller", "uniform"),
        ("retrieval", out / "grpo" / "controller", "retrieval"),
    ]
    preds = answer_test(out, runs, embedder, AgentConfig(**AGENT), IngestConfig(**INGEST))
    results["looks"] = {
        name: look_metrics(out / "preds" / f"{name}.trace.jsonl") for name, _, policy in runs if policy == "agent"
    }
    results["retrieval_top1"] = retrieval_localization(out, embedder, IngestConfig(**INGEST))
    _stage(results, "answer_test", t)

    # score
    report = subprocess.run(
        [
            sys.executable,
            "-m",
            "foveate.cli",
            "eval",
            str(out / "test" / "manifest.jsonl"),
            *map(str, preds),
            "--report",
            str(out / "report"),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    results["eval"] = json.loads(report.stdout.splitlines()[-1])
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    return results


def answer_test(out: Path, runs: list[tuple[str, Path, str]], embedder: str, agent, ingest_config) -> list[Path]:
    """One predictions file per run (resumable: `run_batch` skips answered ids)."""
    from foveate.agent.backends import load_controller
    from foveate.agent.batch import run_batch
    from foveate.agent.records import read_manifest
    from foveate.memory.video_memory import ingest

    rows = read_manifest(out / "test" / "manifest.jsonl")
    memories: dict[str, object] = {}

    def load(video: str):
        if video not in memories:
            memories[video] = ingest(video, cache_root=out / "cache", embedder=embedder, config=ingest_config)
        return memories[video]

    paths = []
    for name, controller, policy in runs:
        path = out / "preds" / f"{name}.jsonl"
        ctl = load_controller(str(controller), max_new_tokens=128)  # an answer or a tool call takes < 100 tokens
        run_batch(
            rows,
            path,
            ctl,
            load,
            policy,
            agent,
            n_frames=agent.max_frames,
            trace=out / "preds" / f"{name}.trace.jsonl",
        )
        paths.append(path)
        del ctl
    return paths


def _looked_window(turn) -> tuple[float, float]:
    """The window a zoom / dense_sample turn looked at (clip handles resolved); traces written before
    turns recorded it give it only in their arguments."""
    if turn.window is not None:
        return turn.window
    return float(turn.arguments["start"]), float(turn.arguments["end"])


def look_metrics(trace: Path) -> dict:
    """Where an agent run looked: the share of questions where a window it zoomed on or densely sampled
    (and got frames from) overlaps the gold evidence, and its executed tool calls per question."""
    from foveate.agent.trajectory import read_trajectories
    from foveate.evals.metrics import temporal_iou

    found, executed, n = 0, 0, 0
    for traj in read_trajectories(trace):
        n += 1
        turns = [t for s in traj.steps for t in s.tool_turns if t.name and t.error is None]
        windows = [_looked_window(t) for t in turns if t.name in ("zoom", "dense_sample") and t.frames_spent > 0]
        found += temporal_iou(windows, list(traj.gold_evidence or [])) > 0
        executed += len(turns)
    return {"n": n, "looked_at_evidence": found / n if n else None, "executed_tool_calls": executed / n if n else None}


def retrieval_localization(out: Path, embedder: str, ingest_config) -> dict:
    """A reference for where to look without a controller: the top clip that ``VideoMemory.search``
    returns for the question's text, cited as evidence (mean IoU with the gold evidence, share overlapping it)."""
    from foveate.agent.records import read_manifest
    from foveate.evals.metrics import temporal_iou
    from foveate.memory.video_memory import ingest

    rows = [r for r in read_manifest(out / "test" / "manifest.jsonl") if r.evidence]
    ious = []
    for video in dict.fromkeys(r.video for r in rows):  # one memory per video, in manifest order
        memory = ingest(video, cache_root=out / "cache", embedder=embedder, config=ingest_config)
        for row in (r for r in rows if r.video == video):
            hit = memory.search(row.question, 1)[0]
            ious.append(temporal_iou([(hit.start_seconds, hit.end_seconds)], [tuple(g) for g in row.evidence]))
    return {
        "n": len(rows),
        "evidence_iou": sum(ious) / len(ious) if ious else None,
        "looked_at_evidence": sum(i > 0 for i in ious) / len(ious) if ious else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="Output folder (resumable).")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu", help="Scale of the run.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    results = run(args.out, args.preset)
    summary = {k: results[k] for k in ("preset", "device", "seconds")}
    summary["runs"] = {
        Path(v["file"]).stem: {
            m: v["overall"].get(m) for m in ("n", "accuracy", "evidence_iou", "frames_used", "tool_calls")
        }
        for v in results["eval"].values()
    }
    for name, looks in results["looks"].items():
        summary["runs"][name].update(looks)
    summary["retrieval_top1"] = results["retrieval_top1"]
    print(json.dumps(summary, indent=1, default=str))


if __name__ == "__main__":
    main()
