"""`foveate synth world`, `foveate eval` and `foveate convert` end to end, through the real CLI."""

import json
import subprocess
import sys

import pytest

from foveate.agent.records import read_manifest
from foveate.evals.synthetic.checks import check_answer
from foveate.evals.synthetic.events import load_log


def run(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "foveate.cli", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    r = run(
        "synth",
        "world",
        out,
        "--videos",
        2,
        "--minutes",
        0.4,
        "--split",
        "test",
        "--seed",
        3,
        "--questions-per-video",
        6,
        "--size",
        "160x120",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    return out, json.loads(r.stdout)


def test_synth_world_cli(world):
    out, summary = world
    rows = read_manifest(out / "manifest.jsonl")
    assert (
        summary["questions"] == len(rows) > 0
        and summary["videos"] == 2
        and sum(summary["tasks"].values()) == len(rows)
    )
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["test-020003.mp4", "test-020004.mp4"]
    for row in rows:
        log = load_log(out / "events" / f"{row.id.rsplit('-q', 1)[0]}.json")
        assert check_answer(row, log) and row.duration_s == 24.0 and row.evidence


def _predictions(rows, path, policy, right_every, frames):
    with path.open("w") as f:
        for i, row in enumerate(rows):
            choice = row.answer if i % right_every == 0 else "ABCDE"[("ABCDE".index(row.answer) + 1) % 5]
            f.write(
                json.dumps(
                    {
                        "id": row.id,
                        "answer": "",
                        "choice": choice,
                        "evidence": row.evidence[:1] if i % 2 == 0 else [],
                        "frames_used": frames,
                        "tool_calls": 2,
                        "tokens_in": 100,
                        "tokens_out": 20,
                        "latency_s": 1.5,
                        "policy": policy,
                    }
                )
                + "\n"
            )
        f.write('{"id": "half-written')  # a killed writer's partial last line is skipped


def test_eval_cli_writes_metrics_report_and_plots(world, tmp_path):
    out, _ = world
    rows = read_manifest(out / "manifest.jsonl")
    _predictions(rows, tmp_path / "agent.jsonl", "agent", 1, 12)
    _predictions(rows, tmp_path / "uniform.jsonl", "uniform", 2, 16)
    rep = tmp_path / "rep"
    r = run(
        "eval", out / "manifest.jsonl", tmp_path / "agent.jsonl", tmp_path / "uniform.jsonl", "--report", rep, "--json"
    )
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout)
    assert list(metrics) == ["agent", "uniform"]
    assert metrics["agent"]["overall"]["accuracy"] == 1.0 and metrics["agent"]["overall"]["frames_used"] == 12
    assert metrics["uniform"]["overall"]["accuracy"] == pytest.approx(
        sum(i % 2 == 0 for i in range(len(rows))) / len(rows)
    )
    assert metrics["agent"]["bad_lines"] == 1 and metrics["agent"]["overall"]["missing"] == 0
    assert set(metrics["agent"]["by_task"]) == {row.task for row in rows} and list(
        metrics["agent"]["by_duration"]
    ) == ["<5min"]
    assert json.loads((rep / "metrics.json").read_text()) == metrics
    report = (rep / "report.md").read_text()
    assert (
        report.count("| agent | uniform |") == 5
        and "## Accuracy by task" in report
        and "| accuracy | 1.000 |" in report
    )
    for png in ("accuracy_by_task.png", "accuracy_vs_frames.png", "evidence_iou.png"):
        assert (rep / png).read_bytes()[:4] == b"\x89PNG" and (rep / png).stat().st_size > 5000
    text = run("eval", out / "manifest.jsonl", tmp_path / "agent.jsonl")
    assert text.returncode == 0 and "agent: accuracy 1.000" in text.stdout
    assert "paired" not in metrics["agent"] and "## Paired" not in report

    # --against: every other policy minus that one, question by question
    r = run(
        "eval",
        out / "manifest.jsonl",
        tmp_path / "agent.jsonl",
        tmp_path / "uniform.jsonl",
        "--against",
        "uniform",
        "--report",
        rep,
        "--json",
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)["agent"]["paired"]
    lost = sum(i % 2 == 1 for i in range(len(rows)))
    assert d["against"] == "uniform" and (d["won"], d["lost"]) == (lost, 0)
    assert d["accuracy_diff"] == pytest.approx(lost / len(rows)) and d["accuracy_diff_ci95"][0] > 0
    assert "paired" not in json.loads(r.stdout)["uniform"]
    assert "## Paired against uniform" in (rep / "report.md").read_text()
    text = run(
        "eval", out / "manifest.jsonl", tmp_path / "agent.jsonl", tmp_path / "uniform.jsonl", "--against", "uniform"
    )
    assert text.returncode == 0 and f"minus uniform: accuracy +{lost / len(rows):.3f}" in text.stdout
    bad = run("eval", out / "manifest.jsonl", tmp_path / "agent.jsonl", "--against", "sft")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --against sft: no such policy (policies: agent)"


def test_eval_cli_bad_inputs_are_one_line_errors(world, tmp_path):
    out, _ = world
    (tmp_path / "junk.jsonl").write_text("not json\nstill not\n")
    bad_manifest = tmp_path / "m.jsonl"
    bad_manifest.write_text('{"id": "a", "video": "v.mp4", "question": "q"}\n{"id": "a"}\n')
    cases = [
        (("eval", tmp_path / "nope.jsonl", tmp_path / "junk.jsonl"), "nope.jsonl: no such manifest file", 2),
        (("eval", out / "manifest.jsonl", tmp_path / "missing.jsonl"), "missing.jsonl: no such predictions file", 2),
        (("eval", out / "manifest.jsonl", tmp_path / "junk.jsonl"), "junk.jsonl: no line is a prediction row", 1),
        (("eval", bad_manifest, tmp_path / "junk.jsonl"), "m.jsonl:2:", 1),
        (("synth", "world", tmp_path / "w", "--minutes", 500), "invalid world setting minutes", 2),
        (("synth", "world", tmp_path / "w", "--size", "big"), "--size 'big': expected WIDTHxHEIGHT", 2),
        (("synth", "world", tmp_path / "w", "--split", "dev"), "unknown split 'dev'", 2),
        (
            ("convert", "mvbench", tmp_path / "junk.jsonl", "--videos", tmp_path, "--out", tmp_path / "o.jsonl"),
            "unknown benchmark 'mvbench'",
            2,
        ),
        (
            ("convert", "egoschema", tmp_path / "junk.jsonl", "--videos", tmp_path, "--out", tmp_path / "o.jsonl"),
            "junk.jsonl: line 1 is not valid JSON",
            1,
        ),
    ]
    for args, message, code in cases:
        r = run(*args)
        assert r.returncode == code, (args, r.stderr)
        assert message in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, (
            args,
            r.stderr,
        )


def test_convert_cli_writes_a_manifest_eval_reads(tmp_path):
    ann = tmp_path / "lvb_val.json"
    ann.write_text(
        json.dumps(
            [
                {
                    "id": "v1_0",
                    "video_id": "v1",
                    "video_path": "v1.mp4",
                    "duration": 30.0,
                    "question": "What is shown?",
                    "candidates": ["a cat", "a dog"],
                    "correct_choice": 1,
                    "question_category": "S2O",
                }
            ]
        )
    )
    r = run("convert", "longvideobench", ann, "--videos", tmp_path / "videos", "--out", tmp_path / "m.jsonl", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {
        "bench": "longvideobench",
        "out": str(tmp_path / "m.jsonl"),
        "questions": 1,
        "videos": 1,
        "missing_videos": 1,
        "skipped": 0,
        "skipped_records": [],
    }
    rows = read_manifest(tmp_path / "m.jsonl")
    assert rows[0].answer == "B" and rows[0].video == str((tmp_path / "videos" / "v1.mp4").resolve())
    (tmp_path / "p.jsonl").write_text(json.dumps({"id": "v1_0", "answer": "a dog"}) + "\n")
    r = run("eval", tmp_path / "m.jsonl", tmp_path / "p.jsonl", "--json")
    assert json.loads(r.stdout)["p"]["overall"]["accuracy"] == 1.0


def test_world_through_batch_to_eval(world, tmp_path, tiny_embedder_spec):
    """The whole path a user takes: synth world -> foveate batch (retrieval baseline, tiny models) -> foveate eval."""
    out, _ = world
    script = tmp_path / "s.json"
    script.write_text(json.dumps(['<answer>{"choice": "A", "answer": "", "evidence": [[1, 5]]}</answer>'] * 50))
    r = run(
        "batch",
        out / "manifest.jsonl",
        "--out",
        tmp_path / "retrieval.jsonl",
        "--policy",
        "retrieval",
        "--frames",
        3,
        "--controller",
        f"scripted:{script}",
        "--embedder",
        tiny_embedder_spec,
    )
    assert r.returncode == 0, r.stderr
    r = run("eval", out / "manifest.jsonl", tmp_path / "retrieval.jsonl", "--report", tmp_path / "rep", "--json")
    assert r.returncode == 0, r.stderr
    o = json.loads(r.stdout)["retrieval"]["overall"]
    rows = read_manifest(out / "manifest.jsonl")
    assert o["accuracy"] == pytest.approx(sum(row.answer == "A" for row in rows) / len(rows))
    assert o["frames_used"] == 3 and o["missing"] == 0 and o["n_with_evidence"] == len(rows)
