"""`foveate train sft|grpo` under accelerate launch and torchrun: two CPU processes (gloo) train as one, and one
of them writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

LAUNCHERS = {
    # accelerate's multi-process launcher; the tiny configs set use_cpu, so the processes use gloo on CPU
    "accelerate": ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_machines=1", "--mixed_precision=no"]
    + ["--dynamo_backend=no", "--main_process_port=0", "--num_processes"],
    "torchrun": ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node"],
}


def _start(kind: str, out, processes: int, *overrides: str, launcher: str = "accelerate") -> subprocess.Popen:
    cli = ["-m", "foveate.cli", "train", kind, f"tiny_{kind}", "-o", str(out), "--json"]
    for item in overrides:
        cli += ["--set", item]
    if processes > 1:
        cmd = [sys.executable, *LAUNCHERS[launcher], str(processes), *cli]
    else:
        cmd = [sys.executable, *cli]
    # one thread a process: runs started side by side share the cores without spinning on each other
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _finish(proc: subprocess.Popen, timeout: int = 600) -> subprocess.CompletedProcess:
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _losses(out) -> list[float]:
    return [h["loss"] for h in json.loads((out / "train_log.json").read_text()) if "loss" in h]


def test_two_process_sft_learns_as_one_process_and_writes_one_checkpoint(tmp_path):
    """Same global batch (2 x 1 vs 1 x 2), same steps: the loss curves agree while they are large, both fall below
    0.45 of where they began, the summary is printed once, and one controller is written."""
    common = ("trl.num_train_epochs=10", "trl.logging_steps=5")
    # both at once: three one-thread processes on the cores, not the one-process run alone on one of them
    started = [
        _start("sft", tmp_path / "one", 1, *common, "trl.per_device_train_batch_size=2"),
        _start("sft", tmp_path / "two", 2, *common, "trl.per_device_train_batch_size=1"),
    ]
    one, two = (_finish(proc) for proc in started)
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]

    summaries = [line for line in two.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1, two.stdout  # the first process alone reports
    assert json.loads(summaries[0])["controller"] == str(tmp_path / "two" / "controller")
    assert two.stderr.count("controller saved to") == 1
    assert (tmp_path / "two" / "controller" / "model.safetensors").is_file()
    assert not list((tmp_path / "two").glob("controller.*"))  # no second, half-written copy beside it

    a, b = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(a) == len(b) >= 6
    print("losses, 1 process:", [round(x, 3) for x in a], "2 processes:", [round(y, 3) for y in b])
    assert a[-1] < 0.45 * a[0] and b[-1] < 0.45 * b[0], (a, b)
    for x, y in zip(a, b):
        if x > 0.5:
            assert abs(x - y) <= 0.25 * x, (a, b)


@pytest.mark.slow
def test_two_process_grpo_after_a_two_process_warm_start(tmp_path):
    """The GRPO config's warm-start SFT and then GRPO itself, both on two processes."""
    overrides = ("trl.per_device_train_batch_size=2", "trl.max_steps=2")
    r = _finish(_start("grpo", tmp_path / "g", 2, *overrides, launcher="torchrun"), timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert len([line for line in r.stdout.splitlines() if line.startswith("{")]) == 1
    assert (tmp_path / "g" / "sft" / "controller" / "model.safetensors").is_file()
    assert (tmp_path / "g" / "controller" / "model.safetensors").is_file()
    assert r.stderr.count("controller saved to") == 2
