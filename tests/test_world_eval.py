import json
import subprocess
import sys

import pytest

from agent.records import ManifestRow, PredictionRow, read_manifest
from evals.metrics import score, temporal_iou
from evals.synthetic.questions import check_answer, make_questions
from evals.synthetic.world import EventLog, make_event_log


@pytest.mark.parametrize("pred, gold, iou", [
    ([(0, 10)], [(0, 10)], 1.0), ([(0, 5)], [(5, 10)], 0.0), ([(0, 4)], [(6, 10)], 0.0),
    ([(2, 4)], [(0, 10)], 0.2), ([], [(0, 1)], 0.0), ([(0, 1)], [], 0.0), ([(0, 2), (1, 3)], [(0, 3)], 1.0),
])
def test_temporal_iou(pred, gold, iou):
    assert temporal_iou(pred, gold) == pytest.approx(iou)


def test_score_hand_computed():
    rows = [ManifestRow(id="a", video="v", question="q", options=["x", "y"], answer="A", evidence=[(0, 10)], task="t1", duration_s=60),
            ManifestRow(id="b", video="v", question="q", options=["x", "y"], answer="B", evidence=[(0, 10)], task="t2", duration_s=600),
            ManifestRow(id="c", video="v", question="q", options=["x", "y"], answer="A", task="t2", duration_s=600)]
    preds = {"a": PredictionRow(id="a", choice="A", evidence=[(0, 5)], frames_used=4),
             "b": PredictionRow(id="b", choice="A", evidence=[(20, 30)], frames_used=8)}
    m = score(rows, preds)
    assert m["overall"]["accuracy"] == pytest.approx(1 / 3)
    assert m["overall"]["evidence_iou"] == pytest.approx(0.25)
    assert m["overall"]["r1@0.5"] == pytest.approx(0.5) and m["overall"]["r1@0.3"] == pytest.approx(0.5)
    assert m["overall"]["errors"] == 1  # c has no prediction
    assert m["by_task"]["t1"]["accuracy"] == 1.0 and m["by_duration"]["5-20min"]["accuracy"] == 0.0


def test_world_is_deterministic_and_answers_are_right():
    a, b = make_event_log(7, 5.0), make_event_log(7, 5.0)
    assert a.model_dump_json() == b.model_dump_json()
    assert make_event_log(8, 5.0).model_dump_json() != a.model_dump_json()
    for seed in range(5):
        log = make_event_log(seed, 8.0)
        rows = make_questions(log, "v.mp4", f"v{seed}", 20, seed)
        assert rows and [r.model_dump() for r in rows] == [r.model_dump() for r in make_questions(log, "v.mp4", f"v{seed}", 20, seed)]
        for r in rows:
            assert len(r.options) == 5 and check_answer(r, log), r
            assert all(0 <= s < e <= log.duration_seconds for s, e in r.evidence)


def test_synth_batch_eval_end_to_end(tmp_path, tiny_embedder_spec):
    out = tmp_path / "world"
    run = lambda *a: subprocess.run([sys.executable, "-m", "agent.cli", *map(str, a)], capture_output=True, text=True, timeout=300)  # noqa: E731
    r = run("synth", "world", out, "--videos", 1, "--minutes", 0.5, "--split", "test")
    assert r.returncode == 0, r.stderr
    rows = read_manifest(out / "manifest.jsonl")
    log = EventLog.model_validate_json((out / "events" / "test-020000.json").read_text())
    assert all(check_answer(row, log) for row in rows)
    script = tmp_path / "s.json"
    script.write_text(json.dumps(['<answer>{"choice": "A", "answer": "", "evidence": [[1, 5]]}</answer>'] * 50))
    for policy in ("uniform", "retrieval"):
        r = run("batch", out / "manifest.jsonl", "--out", tmp_path / f"{policy}.jsonl", "--policy", policy, "--frames", 3,
                "--controller", f"scripted:{script}", "--embedder", tiny_embedder_spec)
        assert r.returncode == 0, r.stderr
    r = run("eval", out / "manifest.jsonl", tmp_path / "uniform.jsonl", tmp_path / "retrieval.jsonl", "--report", tmp_path / "rep", "--json")
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout)
    expected = sum(row.answer == "A" for row in rows) / len(rows)
    assert metrics["uniform"]["overall"]["accuracy"] == pytest.approx(expected)
    assert metrics["retrieval"]["overall"]["frames_used"] == 3
    assert (tmp_path / "rep" / "report.md").read_text().count("| uniform | retrieval |") == 3
    assert all((tmp_path / "rep" / f).stat().st_size > 1000 for f in ("accuracy_by_task.png", "accuracy_vs_frames.png", "evidence_iou.png"))
