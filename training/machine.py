"""What a run computed on: the CPU and its vector code paths, the GPU, Python and the packages' versions.

A seed fixes a run's numbers on one machine and one set of packages: the cpu preset's default command gave
every figure to the last digit five times on one machine. On a CPU with AVX-512 PyTorch, MKL and oneDNN
take other code paths that add in another order, and a newer release of a dependency may do the same;
the same seed then trains to other weights (docs/results.md, runs H7 and H8). Every run records this,
so two runs that disagree can be told apart from a bug.
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

PACKAGES = (
    "foveate",
    "torch",
    "torchvision",
    "transformers",
    "tokenizers",
    "trl",
    "peft",
    "accelerate",
    "langgraph",
    "faiss-cpu",
    "faiss-gpu",
    "open-clip-torch",
    "av",
    "numpy",
    "pillow",
    "pydantic",
    "vllm",
)
VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")


def _cpuinfo() -> dict[str, str]:
    """The first processor's /proc/cpuinfo fields (empty where there is no such file)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor's block ends; the others repeat it
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def machine_record() -> dict:
    """The machine, torch's kernels and the packages this process computes with (JSON-ready)."""
    import torch

    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    cuda = torch.cuda.is_available()
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            pass
    return {
        "python": platform.python_version(),
        "cpu": info.get("model name") or platform.processor() or platform.machine(),
        # a virtual machine's model name can be generic ("AMD EPYC"): the family and model tell generations apart
        "cpu_id": " ".join(f"{k} {info[k]}" for k in ("vendor_id", "cpu family", "model") if k in info),
        "cpu_vector_flags": [f for f in VECTOR_FLAGS if f in flags],
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda if cuda else None,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "gpu_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda else None,
        "packages": packages,
    }
