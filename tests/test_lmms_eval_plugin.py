"""`lmms-eval --model foveate` end to end, on a local task over two synthetic-world questions.

lmms-eval pins av<16, so it lives in a virtual environment layered on this one (README.md,
"lmms-eval"); ``FOVEATE_LMMS_PYTHON`` names that environment's interpreter. The task is a local
YAML with a JSON dataset (``dataset_path: json``), so nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

LMMS_PYTHON = os.environ.get("FOVEATE_LMMS_PYTHON")
pytestmark = pytest.mark.skipif(
    not LMMS_PYTHON,
    reason="FOVEATE_LMMS_PYTHON is not set: point it at a venv with lmms-eval==0.7.3 (README.md, 'lmms-eval')",
)

TASK = "foveate_local"
TASK_YAML = """\
task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {docs}
test_split: test
output_type: generate_until
doc_to_visual: !function {task}_utils.doc_to_visual
doc_to_text: !function {task}_utils.doc_to_text
doc_to_target: answer
generation_kwargs:
  max_new_tokens: 16
process_results: !function {task}_utils.process_results
metric_list:
  - metric: accuracy
    aggregation: mean
    higher_is_better: true
lmms_eval_specific_kwargs:
  default:
    post_prompt: "\\nAnswer with the option's letter from the given choices directly."
metadata:
  - version: 0.0
"""
# Shaped like lmms-eval's videomme task: lettered options in the document and the prompt, a letter scored.
TASK_UTILS = """\
from lmms_eval.tasks._task_utils.mcq_extract import extract_mcq_answer


def doc_to_visual(doc):
    return [doc["video"]]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    post = (lmms_eval_specific_kwargs or {}).get("post_prompt", "")
    return doc["question"] + "\\n" + "\\n".join(doc["options"]) + post


def process_results(doc, results):
    letters = [option[0] for option in doc["options"]]
    return {"accuracy": float(extract_mcq_answer(results[0], choices=letters) == doc["answer"])}
"""


@pytest.fixture(scope="module")
def local_task(tmp_path_factory, tiny_controller_dir, tiny_embedder_spec) -> dict:
    """A task folder over two questions of one synthetic world that share their gold letter."""
    from foveate.evals.synthetic.world import generate_world

    root = tmp_path_factory.mktemp("lmms")
    world = root / "world"
    generate_world(world, 2, 1.0, seed=0, split="train")
    rows = [json.loads(line) for line in (world / "manifest.jsonl").read_text().splitlines()]
    by_letter = defaultdict(list)
    for row in rows:
        by_letter[row["answer"]].append(row)
    letter, chosen = next((k, v[:2]) for k, v in sorted(by_letter.items()) if len(v) >= 2)
    docs = [
        {
            "question_id": row["id"],
            "video": str(world / row["video"]),
            "question": row["question"],
            "options": [f"{chr(ord('A') + i)}. {option}" for i, option in enumerate(row["options"])],
            "answer": row["answer"],
        }
        for row in chosen
    ]
    tasks = root / "tasks"
    tasks.mkdir()
    (tasks / "docs.json").write_text(json.dumps(docs))
    (tasks / f"{TASK}.yaml").write_text(TASK_YAML.format(task=TASK, docs=tasks / "docs.json"))
    (tasks / f"{TASK}_utils.py").write_text(TASK_UTILS)
    return {
        "tasks": tasks,
        "letter": letter,
        "docs": docs,
        "controller": str(tiny_controller_dir),
        "embedder": tiny_embedder_spec,
    }


def _run_lmms_eval(model_args: str, tasks: Path, out: Path) -> list[dict]:
    """Run lmms-eval in the layered venv; return the logged samples after checking it succeeded."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(out / "hf-datasets"),
    }
    cmd = [LMMS_PYTHON, "-m", "lmms_eval", "--model", "foveate", "--model_args", model_args, "--tasks", TASK]
    cmd += ["--include_path", str(tasks), "--output_path", str(out / "results"), "--limit", "2", "--log_samples"]
    # cwd outside the repository: `python -m` puts the cwd on sys.path, and a stale foveate.egg-info
    # there would hide the installed entry points.
    proc = subprocess.run(cmd, cwd=out, env=env, capture_output=True, text=True, timeout=540)
    log = proc.stdout + proc.stderr
    # lmms-eval logs an evaluation error and still exits 0: the Traceback check catches those.
    assert proc.returncode == 0, log[-4000:]
    assert "Traceback" not in log, log[-4000:]
    samples = list((out / "results").rglob(f"*samples_{TASK}.jsonl"))
    assert len(samples) == 1, log[-4000:]
    return [json.loads(line) for line in samples[0].read_text().splitlines()]


def test_lmms_eval_runs_the_agent_loop_with_the_tiny_models(local_task, tmp_path):
    args = f"controller={local_task['controller']},embedder={local_task['embedder']},max_frames=8,max_steps=2"
    samples = _run_lmms_eval(args, local_task["tasks"], tmp_path)

    assert sorted(s["doc_id"] for s in samples) == [0, 1]
    for sample in samples:
        assert isinstance(sample["filtered_resps"], str)
        assert sample["token_counts"][0]["input_tokens"] > 0  # the controller saw the overview prompt
        assert sample["accuracy"] in (0.0, 1.0)


def test_lmms_eval_scores_the_option_letter(local_task, tmp_path):
    """A scripted controller looks once, then answers the gold letter: lmms-eval must score both right."""
    letter = local_task["letter"]
    look = '<tool_call>{"name": "retrieve", "arguments": {"query": "a shape"}}</tool_call>'
    final = "<answer>" + json.dumps({"choice": letter, "answer": "x", "evidence": [[0.0, 5.0]]}) + "</answer>"
    script = tmp_path / "script.json"
    script.write_text(json.dumps([look, final, look, final]))
    args = f"controller=scripted:{script},embedder={local_task['embedder']},max_frames=8"
    samples = _run_lmms_eval(args, local_task["tasks"], tmp_path)

    assert len(samples) == 2
    assert [s["filtered_resps"] for s in samples] == [letter, letter]
    assert [s["accuracy"] for s in samples] == [1.0, 1.0]
    assert [s["target"] for s in samples] == [d["answer"] for d in local_task["docs"]]
