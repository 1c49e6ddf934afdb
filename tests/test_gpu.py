"""GPU smoke tests: the FAISS GPU index and GRPO's vLLM generation. Run with ``pytest -m gpu`` on a CUDA machine
(with ``faiss-gpu`` and the ``[vllm]`` extra installed); they skip, saying why, where those are missing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.gpu


def _need_cuda() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")


def test_faiss_gpu_index_searches_like_the_cpu_one():
    import faiss

    from foveate.memory.clip_index import ClipIndex

    if not hasattr(faiss, "index_cpu_to_all_gpus") or faiss.get_num_gpus() == 0:
        pytest.skip("FAISS has no GPU here (pip install faiss-gpu-cu12)")
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(5000, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = ClipIndex.build(vectors, np.arange(len(vectors)))
    assert "Gpu" in type(index._search_index).__name__
    cpu = faiss.IndexFlatIP(64)
    cpu.add(vectors)
    for q in (3, 1234, 4999):
        ids, scores = index.search(vectors[q], 5)
        want_scores, want_ids = cpu.search(vectors[q : q + 1], 5)
        assert ids[0] == q and list(ids) == list(want_ids[0])
        np.testing.assert_allclose(scores, want_scores[0], atol=1e-4)


def test_grpo_generates_with_vllm_colocated(small_world, tmp_path: Path):
    _need_cuda()
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed (pip install -e '.[vllm]')")
    from foveate.training.config import load_config
    from foveate.training.grpo import run_grpo

    config = {
        "model": {"path": "tiny"},
        "embedder": "tiny",
        "lora": {"enabled": False},
        "world": {"dir": str(small_world), "max_questions": 2},
        "agent": {"max_steps": 4, "max_frames": 16, "overview_images": 1, "overview_chars": 400},
        "ingest": {"thumbnail_max_side": 64, "embed_max_side": 64},
        "generation": "vllm",
        "trl": {
            "max_steps": 2,
            "per_device_train_batch_size": 2,
            "num_generations": 2,
            "max_completion_length": 128,
            "learning_rate": 1e-5,
            "logging_steps": 1,
            "save_strategy": "no",
            "report_to": "none",
            "vllm_gpu_memory_utilization": 0.2,
        },
    }
    path = tmp_path / "grpo.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_grpo(load_config(path, "grpo"), tmp_path / "out")
    logs = [h for h in result.log_history if "reward" in h]
    assert len(logs) == 2 and all("rewards/format/mean" in h for h in logs)
    assert (result.controller / "config.json").is_file()


def test_pretraining_trains_on_the_gpu_from_batches_drawn_by_workers(tmp_path: Path):
    """The pretraining stage moves the controller and each batch to the GPU (the gpu preset's workers draw)."""
    _need_cuda()
    import torch

    from foveate.evals.synthetic.tiny_controller import build_tiny_controller
    from foveate.training.config import PretrainRunConfig
    from foveate.training.pretrain import run_pretrain

    controller = build_tiny_controller(tmp_path / "tiny", hidden_size=64, vocab_size=2048, tool_schemas_in_vocab=True)
    config = PretrainRunConfig(
        model={"path": str(controller), "train_vision": True, "dtype": "float32"},
        steps=4,
        batch_size=4,
        caption_first_steps=1,
        eval_examples=2,
        draw_workers=2,
    )
    torch.cuda.reset_peak_memory_stats()
    result = run_pretrain(config, tmp_path / "out")
    assert torch.cuda.max_memory_allocated() > 0
    assert len(result.losses) == 4 and all(np.isfinite(result.losses))
