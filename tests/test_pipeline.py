"""`foveate train pipeline`: the held-out figures it reports, and its stages end to end at a tiny size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from foveate.agent.answer import Answer
from foveate.agent.trajectory import Step, ToolTurn, Trajectory, write_trajectories
from foveate.training.pipeline import PRESETS, STAGES, load_pipeline_config, trace_metrics


def _traj(question: str, turns: list[ToolTurn], gold, answer: Answer | None = None, gold_letter="A") -> Trajectory:
    return Trajectory(
        video="v.mp4",
        question=question,
        options=["x", "y", "z"],
        duration_s=60.0,
        steps=[Step(text="", tool_turns=turns)],
        gold_evidence=gold,
        gold=gold_letter,
        answer=answer,
    )


def _retrieve(query: str) -> ToolTurn:
    return ToolTurn(name="retrieve", arguments={"query": query, "k": 3}, frames_spent=3)


def test_trace_metrics_count_looks_distinct_queries_and_the_reward(tmp_path):
    def zoom(s, e, frames=2, error=None):
        return ToolTurn(name="zoom", arguments={"start": s, "end": e}, frames_spent=frames, error=error)

    by_handle = ToolTurn(name="zoom", arguments={"clip": "c2"}, frames_spent=4, window=(11.0, 13.0))
    right = Answer(text="x", choice="A", evidence=[(12.0, 13.0)])
    trajectories = [
        _traj("where is the red star?", [_retrieve("red star"), zoom(10, 14)], [(12.0, 13.0)], right),
        _traj("where is the blue circle?", [_retrieve("red star"), by_handle], [(12.0, 13.0)]),  # same query
        _traj("when does the cross move?", [_retrieve("cross"), zoom(20, 24)], [(12.0, 13.0)]),  # elsewhere
        _traj("what colour?", [zoom(10, 14, frames=0, error="budget")], [(12.0, 13.0)]),  # failed: no look
        _traj("what shape?", [ToolTurn(name=None, error="not JSON")], [(12.0, 13.0)]),  # unparsed: not executed
    ]
    write_trajectories(tmp_path / "t.jsonl", trajectories)
    m = trace_metrics(tmp_path / "t.jsonl", max_frames=16)
    assert m["looked_at_evidence"] == 2 / 5
    assert m["executed_tool_calls"] == 6 / 5  # 2 + 2 + 2 + 0 + 0 over 5 questions
    assert m["distinct_query_share"] == 2 / 3  # three questions retrieved, with two distinct queries
    assert m["query_names_subject"] == 2 / 3  # "red star" names its subject, "cross" too; not the blue circle
    assert m["call_errors"] == 2 / 8
    # only the first answered, in the gold option's words with their letter
    assert m["answer_words_right"] == 1 / 5 and m["letter_follows_words"] == 1.0
    # Only the first is answered: correct (1) + format (0.2) + IoU 1 (0.5) - 5 of 16 frames (0.2 * 5/16)
    penalties = 0.2 * (5 + 7 + 5 + 0 + 0) / 16
    assert m["heldout_reward"] == pytest.approx((1.0 + 0.2 + 0.5 - penalties) / 5)


def test_distinct_queries_are_counted_per_question_and_per_subject(tmp_path):
    gold = [(12.0, 13.0)]
    trajectories = [
        _traj("What colour was the star?", [_retrieve("a star")], gold),
        _traj("When did the star appear?", [_retrieve("a star")], gold),  # same subject, same query: fine
        _traj("When did the red circle appear?", [_retrieve("a red circle")], gold),
        _traj("How many blue shapes appeared?", [_retrieve("a red circle")], gold),  # another subject, same query
    ]
    write_trajectories(tmp_path / "t.jsonl", trajectories)
    m = trace_metrics(tmp_path / "t.jsonl", max_frames=16)
    assert m["distinct_query_share"] == 2 / 4  # per question
    assert m["distinct_subject_queries"] == 2 / 3  # star, red circle, blue: two queries for three subjects


def test_answer_words_and_letters_are_scored_apart(tmp_path):
    """Right words with the wrong letter count for the words, not for the letter; words naming no option
    count for neither."""
    trajectories = [
        _traj("q1", [], [], Answer(text="X", choice="C"), "A"),  # gold words, letter of z
        _traj("q2", [], [], Answer(text="y", choice="B"), "A"),  # wrong words, their own letter
        _traj("q3", [], [], Answer(text="something else", choice="A"), "A"),  # right letter, words of no option
    ]
    write_trajectories(tmp_path / "t.jsonl", trajectories)
    m = trace_metrics(tmp_path / "t.jsonl", max_frames=16)
    assert m["answer_words_right"] == 1 / 3
    assert m["letter_follows_words"] == 1 / 2


def test_presets_and_yaml_configs(tmp_path):
    assert load_pipeline_config("cpu", seed=3).seed == 3 and load_pipeline_config("cpu") == PRESETS["cpu"]
    path = tmp_path / "small.yaml"
    path.write_text("train_videos: 2\nseed: 5\n")
    config = load_pipeline_config(str(path))
    assert config.name == "small" and config.train_videos == 2 and config.seed == 5
    path.write_text("train_vidoes: 2\n")
    from foveate.training.config import ConfigError

    with pytest.raises(ConfigError, match="train_vidoes"):
        load_pipeline_config(str(path))
    # a bad value inside a section fails as the config loads, naming it, before any run folder exists
    path.write_text("ingest:\n  clip_pooling: maximum\n")
    with pytest.raises(ConfigError, match=r"ingest\.clip_pooling: Input should be 'mean' or 'max'"):
        load_pipeline_config(str(path))
    path.write_text("agent:\n  max_frames: -3\n")
    with pytest.raises(ConfigError, match=r"agent\.max_frames"):
        load_pipeline_config(str(path))
    path.write_text("pretrain:\n  caption: {p_varied: 2}\n")
    with pytest.raises(ConfigError, match=r"pretrain\.caption\.p_varied"):
        load_pipeline_config(str(path))
    assert PRESETS["cpu"].ingest["clip_pooling"] == "max"
    # one field of pretraining's caption or ground section keeps the world's sizes and the agent's budgets
    path.write_text(
        "width: 128\nheight: 96\ningest: {clip_seconds: 5.0}\n"
        "pretrain:\n  caption: {minutes: 2.0}\n  ground: {max_frames: 12}\n"
    )
    config = load_pipeline_config(str(path))
    pretrain = config.pretrain_config("unused")
    assert (pretrain.caption.width, pretrain.caption.height, pretrain.caption.minutes) == (128, 96, 2.0)
    assert pretrain.ground.max_frames == 12 and pretrain.ground.clip_seconds == 5.0


def test_a_run_folder_resumes_with_its_own_config_only(tmp_path):
    from foveate.training.config import ConfigError
    from foveate.training.pipeline import claim_run_folder

    claim_run_folder(tmp_path, PRESETS["cpu"])
    claim_run_folder(tmp_path, load_pipeline_config("cpu"))  # a preset's tuples read back as lists: the same run
    with pytest.raises(ConfigError, match="differs in seed"):
        claim_run_folder(tmp_path, load_pipeline_config("cpu", seed=4))
    # A run written before a field existed resumes when the field is at its default.
    older = tmp_path / "older"
    older.mkdir()
    custom = PRESETS["cpu"].model_copy(update={"clip_videos": 0})
    held = json.loads(custom.model_dump_json())
    del held["clip_videos"]
    (older / "config.json").write_text(json.dumps(held))
    claim_run_folder(older, custom)
    with pytest.raises(ConfigError, match="differs in clip_videos"):
        claim_run_folder(older, PRESETS["cpu"])


TINY = """
train_videos: 2
val_videos: 1
test_videos: 1
minutes: 0.3
questions: 2
clip_epochs: 1
clip_videos: 3
embedder_tower: resnet
hidden: 32
layers: 1
vocab: 600
schemas_in_vocab: false
pretrain_steps: 6
pretrain: {batch_size: 2, caption_first_steps: 2, eval_examples: 8, mix: {ground: 1, cite: 1}}
drill_steps: 2
sft_epochs: 1
sft_batch: 2
sft_warmup: 0
paths: 1
grpo_steps: 2
grpo_select_every: 1
grpo_videos: 1
grpo_batch: 2
grpo_generations: 2
grpo_beta: 0.04
grpo_scale_rewards: none
agent: {max_steps: 4, max_frames: 12, overview_images: 1, overview_chars: 400}
"""


def _pipeline(config: Path, out: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "foveate.cli", "train", "pipeline", str(config), "-o", str(out), "--json"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path, dict]:
    """(config, run folder, --json summary) of one whole run of TINY, shared by the tests that read it."""
    tmp = tmp_path_factory.mktemp("pipeline")
    config = tmp / "tiny.yaml"
    config.write_text(TINY)
    first = _pipeline(config, tmp / "a")
    assert first.returncode == 0, first.stderr[-3000:]
    return config, tmp / "a", json.loads(first.stdout.strip().splitlines()[-1])


def test_pipeline_runs_every_stage_and_resumes(tiny_run, tmp_path):
    config, out, summary = tiny_run
    assert set(summary["runs"]) == {"untrained", "pretrained", "sft", "grpo", "uniform", "retrieval"}
    for run in summary["runs"].values():
        assert run["n"] == 2 and 0.0 <= run["accuracy"] <= 1.0 and len(run["accuracy_ci"]) == 2
    assert summary["runs"]["uniform"]["frames_used"] >= summary["runs"]["untrained"]["frames_used"]
    # every policy but SFT is compared with SFT question by question
    assert "vs_sft" not in summary["runs"]["sft"]
    grpo, sft = summary["runs"]["grpo"], summary["runs"]["sft"]
    assert grpo["vs_sft"]["n"] == 2 and grpo["vs_sft"]["accuracy_diff"] == pytest.approx(
        grpo["accuracy"] - sft["accuracy"]
    )
    assert "## Paired against agent (sft)" in (out / "report" / "report.md").read_text()
    assert tuple(summary["seconds"]) == STAGES
    assert summary["grpo"]["step"] == [1, 2] and "pretrain" in summary
    assert summary["drill"]["steps"] == 2 and summary["drill"]["after"] is None  # the stage skips the probes
    assert (out / "drill" / "controller" / "config.json").is_file()
    machine = summary["machine"]  # what the figures were computed on
    assert machine["torch_cpu_capability"] and machine["packages"]["torch"] and machine["cpu_threads"] >= 1
    # select: both steps and the SFT reference answered the val split; the chosen step's weights are kept
    selection = summary["grpo_selection"]
    assert set(selection["candidates"]) == {"sft", "step1", "step2"} and selection["questions"] == 2
    rewards = {name: c["heldout_reward"] for name, c in selection["candidates"].items()}
    chosen = selection["selected_step"]
    assert rewards[f"step{chosen}"] == max(rewards["step1"], rewards["step2"])
    source = out / "grpo" / ("controller" if chosen == 2 else "checkpoints/checkpoint-1")
    weights = (out / "grpo" / "selected" / "model.safetensors").read_bytes()
    assert weights == (source / "model.safetensors").read_bytes()
    assert len(list((out / "grpo" / "val").glob("*.trace.jsonl"))) == 3
    log = json.loads((out / "grpo" / "train_log.json").read_text())
    assert any("kl" in entry for entry in log)  # grpo_beta > 0: the KL to the SFT controller is in the loss
    assert {"pick", "answer", "colour", "said"} <= set(summary["pretrain"]["after"])  # grounded, captions, cite
    assert (out / "report" / "grpo_reward.png").stat().st_size > 1000
    assert (out / "report" / "pretrain_skills.png").stat().st_size > 1000
    assert (out / "pretrain" / "controller" / "config.json").is_file()
    assert len(list((out / "clip_world" / "videos").glob("*.mp4"))) == 3  # the embedder's own world

    # grpo_videos: GRPO's prompts come from a video that neither SFT's world nor the embedder's holds
    def videos(world: str) -> set[str]:
        rows = (out / world / "manifest.jsonl").read_text().splitlines()
        return {Path(json.loads(row)["video"]).name for row in rows}

    assert len(videos("rl")) == 1 and not videos("rl") & (videos("train") | videos("clip_world"))
    assert summary["clip"]["pairs"] > 0
    from open_clip.modified_resnet import ModifiedResNet

    from foveate.memory.embedder import load_embedder

    assert isinstance(load_embedder(summary["clip"]["embedder"]).model.visual, ModifiedResNet)  # embedder_tower
    # A second run finds every stage done: nothing is retrained, the figures are the same.
    second = _pipeline(config, out, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    again = json.loads(second.stdout.strip().splitlines()[-1])
    assert again["runs"] == summary["runs"] and again["seconds"] == summary["seconds"]
    assert f"stage 1/{len(STAGES)}" not in second.stderr
    # Another config into the same folder would mix two runs' stages: refused before any work.
    seven = tmp_path / "seven.yaml"
    seven.write_text(TINY + "seed: 7\n")
    other = _pipeline(seven, out, timeout=300)
    assert other.returncode == 2 and "holds a run of another config" in other.stderr, other.stderr[-2000:]


def test_answering_reports_progress_and_counts_the_answers_of_a_resumed_call(tiny_run, tmp_path):
    """``progress(answers, runs x questions)`` after each answer; a later call over the same files starts from the
    answers they hold and answers only what is missing."""
    from foveate.agent.config import AgentConfig
    from foveate.memory.config import IngestConfig
    from foveate.training.pipeline import answer_split

    config, out, summary = tiny_run
    settings = load_pipeline_config(str(config))
    agent, ingest = AgentConfig(**settings.agent), IngestConfig(**settings.ingest)
    runs = [("sft", out / "sft" / "controller", "agent"), ("uniform", out / "sft" / "controller", "uniform")]
    embedder = summary["clip"]["embedder"]
    first, second = [], []
    answer_split(out, "test", runs[:1], embedder, agent, ingest, tmp_path, lambda *a: first.append(a))
    held = (tmp_path / "sft.jsonl").read_text()
    answer_split(out, "test", runs, embedder, agent, ingest, tmp_path, lambda *a: second.append(a))
    assert first == [(1, 2), (2, 2)]  # the test split: one video, two questions
    assert second == [(3, 4), (4, 4)]  # SFT's two answers were there: only the uniform baseline's are new
    assert (tmp_path / "sft.jsonl").read_text() == held


def test_answering_in_worker_processes_gives_the_same_answers(tiny_run, tmp_path):
    """``workers=2``: two spawned processes answer one run each; every answer and trajectory is the one
    answering in this process gives, and progress reaches runs x questions."""
    from foveate.agent.config import AgentConfig
    from foveate.memory.config import IngestConfig
    from foveate.training.pipeline import answer_split

    config, out, summary = tiny_run
    settings = load_pipeline_config(str(config))
    agent, ingest = AgentConfig(**settings.agent), IngestConfig(**settings.ingest)
    runs = [("sft", out / "sft" / "controller", "agent"), ("retrieval", out / "sft" / "controller", "retrieval")]
    embedder = summary["clip"]["embedder"]
    seen = []
    answer_split(out, "test", runs, embedder, agent, ingest, tmp_path / "two", lambda *a: seen.append(a), workers=2)
    answer_split(out, "test", runs, embedder, agent, ingest, tmp_path / "one")
    assert seen[-1] == (4, 4) and all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))

    def untimed(value):  # wall-clock fields (an answer's latency, a step's seconds) differ run to run
        if isinstance(value, dict):
            return {k: untimed(v) for k, v in value.items() if k not in ("latency_s", "seconds")}
        return [untimed(v) for v in value] if isinstance(value, list) else value

    def rows(path: Path) -> list[dict]:
        return [untimed(json.loads(line)) for line in path.read_text().splitlines()]

    for name in ("sft.jsonl", "sft.trace.jsonl", "retrieval.jsonl", "retrieval.trace.jsonl"):
        assert rows(tmp_path / "two" / name) == rows(tmp_path / "one" / name), name
    assert len(rows(tmp_path / "two" / "retrieval.jsonl")) == 2
    # A video that cannot be indexed: each of its questions gets an error row, as in one process, and no stage fails.
    broken = tmp_path / "broken"
    (broken / "test").mkdir(parents=True)
    manifest = [json.loads(line) for line in (out / "test" / "manifest.jsonl").read_text().splitlines()]
    gone = [{**row, "video": str(broken / "gone.mp4")} for row in manifest]
    (broken / "test" / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in gone))
    answer_split(broken, "test", runs, embedder, agent, ingest, broken / "preds", workers=2)
    errors = [row["error"] for row in rows(broken / "preds" / "sft.jsonl")]
    assert len(errors) == 2 and all("gone.mp4" in e for e in errors), errors


def test_same_seed_same_weights_and_answers(tiny_run, tmp_path):
    """Two runs of one config and seed: every trained controller is the same bit for bit, and so is every answer."""
    import hashlib

    config, first, summary = tiny_run
    proc = _pipeline(config, tmp_path / "b")
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads(proc.stdout.strip().splitlines()[-1])
    runs = {"a": first, "b": tmp_path / "b"}
    for part in ("pretrain", "sft", "grpo"):
        digests = {
            hashlib.sha256((run / part / "controller" / "model.safetensors").read_bytes()).digest()
            for run in runs.values()
        }
        assert len(digests) == 1, part

    def answers(run: Path) -> list:
        rows = [json.loads(line) for line in (run / "preds" / "grpo.jsonl").read_text().splitlines()]
        return [(r["id"], r.get("answer"), r.get("choice"), r.get("evidence")) for r in rows]

    assert answers(runs["a"]) == answers(runs["b"])
    assert summary["runs"] == again["runs"]


def test_spread_over_seeds_and_what_it_refuses(tmp_path):
    """`foveate train spread` over three seeds' results.json: mean, sample sd and range per policy and metric;
    a run of another config, one seed twice and an unfinished run are refused with exit 2."""
    config = PRESETS["cpu"].model_dump(mode="json")
    outs = []
    for seed, accuracy in ((0, 0.25), (1, 0.5), (2, 0.75)):
        out = tmp_path / f"s{seed}"
        out.mkdir()
        (out / "config.json").write_text(json.dumps({**config, "seed": seed}))
        runs = {"sft": {"accuracy": accuracy, "evidence_iou": 0.2, "query_names_subject": None}}
        (out / "results.json").write_text(json.dumps({"preset": "cpu", "seed": seed, "runs": runs}))
        outs.append(out)

    def spread(*paths):
        cmd = [sys.executable, "-m", "foveate.cli", "train", "spread", *map(str, paths), "--json"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    proc = spread(*outs)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["seeds"] == [0, 1, 2]
    accuracy = result["policies"]["sft"]["accuracy"]
    assert accuracy == {"values": [0.25, 0.5, 0.75], "mean": 0.5, "std": 0.25, "min": 0.25, "max": 0.75}
    assert result["policies"]["sft"]["evidence_iou"]["std"] == 0.0
    assert "query_names_subject" not in result["policies"]["sft"]  # not measured: no figure rather than a 0
    table = subprocess.run([*proc.args[:-1]], capture_output=True, text=True, timeout=120)
    assert table.returncode == 0 and "0.5 ± 0.25" in table.stdout and "0.25 0.5 0.75" in table.stdout, table.stdout
    assert "range" in table.stdout and "[0.25, 0.75]" in table.stdout, table.stdout  # not eaten as markup
    older = {k: v for k, v in config.items() if k != "grpo_beta"}  # saved before the field existed: its default
    (outs[1] / "config.json").write_text(json.dumps({**older, "seed": 1}))
    assert spread(*outs).returncode == 0

    (outs[2] / "config.json").write_text(json.dumps({**config, "seed": 2, "sft_lr": 1.0}))
    other = spread(*outs)
    assert other.returncode == 2 and "differs in sft_lr" in other.stderr, other.stderr
    twice = spread(outs[0], outs[0])
    assert twice.returncode == 2 and "share a seed" in twice.stderr
    (outs[1] / "results.json").unlink()
    unfinished = spread(outs[0], outs[1])
    assert unfinished.returncode == 2 and "no results.json" in unfinished.stderr


STUDY = Path(__file__).resolve().parents[1] / "evals" / "gpu_study.sh"


def _study(*args, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(STUDY), *map(str, args)], capture_output=True, text=True, timeout=timeout)


def test_the_gpu_study_script_collects_a_run_and_stops_at_its_time_limit(tiny_run, tmp_path):
    """evals/gpu_study.sh on a finished tiny run (every stage done: it only reports), then on a new folder
    with a time limit it cannot meet; without a GPU it refuses unless told."""
    import shutil

    import torch

    config, first, summary = tiny_run
    run = tmp_path / "run"
    shutil.copytree(first, run)
    out = tmp_path / "out"
    done = _study(out, "--preset", config, "--run", run, "--allow-cpu")
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "results.json").read_text())["runs"] == summary["runs"]
    assert json.loads((out / "stages.json").read_text()) == json.loads((run / "stages.json").read_text())
    env = json.loads((out / "env.json").read_text())
    assert "torch" in env["packages"] and env["cpu_threads"] >= 1 and (env["gpu"] is None) != torch.cuda.is_available()
    for name in ("pipeline.log", "pretrain_metrics.json", "selection.json", "report.md", "grpo_reward.png"):
        assert (out / name).stat().st_size > 0, name
    assert "done: " in done.stderr

    stopped = _study(
        tmp_path / "out2", "--preset", config, "--run", tmp_path / "new", "--time-limit", 3, "--allow-cpu"
    )
    assert stopped.returncode == 124, stopped.stderr[-2000:]
    assert "run the same command again to resume" in stopped.stderr
    assert not (tmp_path / "out2" / "results.json").exists()
    if not torch.cuda.is_available():
        refused = _study(tmp_path / "out3", "--preset", config, "--run", tmp_path / "new")
        assert refused.returncode == 1 and "no CUDA GPU" in refused.stderr
    bad = _study(tmp_path / "out4", "--time-limit", "soon")
    assert bad.returncode == 2 and "whole seconds" in bad.stderr


def test_offline_wheels_lists_what_the_other_machine_lacks(tmp_path, capsys):
    from importlib.metadata import version

    from foveate.evals.offline_wheels import closure, main, present

    needed = closure("foveate", "3.12")
    assert {"av", "faiss-cpu", "open-clip-torch", "trl", "langgraph", "pydantic", "torch"} <= set(needed)
    assert needed["av"] == version("av")
    have = tmp_path / "freeze.txt"
    # pip freeze lines, a bare name, a comment: everything but av and the packages only av needs
    have.write_text("".join(f"{n}=={v}\n" for n, v in needed.items() if n not in ("av", "torch")) + "torch\n# ok\n")
    assert present(have) == set(needed) - {"av"}
    main([str(have), str(tmp_path / "wheels"), "--dry-run"])
    result = json.loads(capsys.readouterr().out)
    assert result["missing"] == {"av": version("av")} and result["wheels"] == []
    main([str(have), str(tmp_path / "wheels"), "--dry-run", "--exclude", "av"])
    assert json.loads(capsys.readouterr().out)["missing"] == {}


def test_sft_starts_from_the_drilled_controller_when_the_preset_drills():
    cpu = load_pipeline_config("cpu")
    assert cpu.drill_steps > 0 and cpu.sft_start(Path("o")) == Path("o/drill/controller")
    undrilled = cpu.model_copy(update={"drill_steps": 0})
    assert undrilled.sft_start(Path("o")) == Path("o/pretrain/controller")
    assert undrilled.model_copy(update={"pretrain_steps": 0}).sft_start(Path("o")) == Path("o/models/controller")
    assert cpu.sft_config(Path("o"), "tiny", {}).model.path == str(Path("o/drill/controller"))
