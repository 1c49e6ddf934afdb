"""Packaging and structure: one import name, every package listed, dependencies that point down."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("memory", "tools", "agent", "evals", "training")
# A part may import the parts left of it only; only the CLI (foveate/cli) imports across.
RANK = {"memory": 0, "tools": 1, "agent": 2, "evals": 3, "training": 4}


def _sources():
    for part in PARTS:
        for path in sorted((ROOT / part).rglob("*.py")):
            yield part, path


def _imported_modules(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def test_pyproject_lists_every_package_folder():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {(ROOT / p).resolve() for p in ["foveate", *PARTS]}
    found = set()
    for top in folders:
        for init in top.rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT)
            name = "foveate" if rel.parts[0] == "foveate" else "foveate." + rel.parts[0]
            found.add(".".join([name, *rel.parts[1:]]))
    assert set(setuptools["packages"]) == found
    assert setuptools["package-dir"] == {"foveate": "foveate", **{f"foveate.{p}": p for p in PARTS}}


def test_sources_import_foveate_names_and_only_downwards():
    problems = []
    for part, path in _sources():
        for line, module in _imported_modules(path):
            top, _, rest = module.partition(".")
            where = f"{path.relative_to(ROOT)}:{line}"
            if top in PARTS:
                problems.append(f"{where}: import foveate.{module}, not {module}")
            elif top == "foveate":
                target = rest.partition(".")[0]
                if target == "cli" or RANK.get(target, -1) > RANK[part]:
                    problems.append(f"{where}: {part} must not import {module}")
    assert not problems, "\n".join(problems)


def test_overview_path_does_not_import_torch():
    code = (
        "import sys; import foveate.memory.overview, foveate.memory.probe, foveate.cli, foveate.cli.overview; "
        "import foveate.memory.video_memory; "
        "print(sorted(m for m in ('torch', 'transformers', 'faiss', 'open_clip', 'foveate.agent.backends') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "[]"


def test_the_cli_timeout_default_is_the_backend_default():
    from foveate.agent.backends.openai_backend import DEFAULT_TIMEOUT_SECONDS
    from foveate.cli.common import CONTROLLER_TIMEOUT_SECONDS

    assert CONTROLLER_TIMEOUT_SECONDS == DEFAULT_TIMEOUT_SECONDS


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the sources (setuptools writes build/ next to what it builds)."""
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("foveate", *PARTS):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return next(out.glob("foveate-*.whl"))


def test_wheel_has_one_top_level_name_and_the_configs(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        top_level = {n.split("/")[0] for n in names if ".dist-info/" not in n}
        entry_points = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert top_level == {"foveate"}
    assert {
        "foveate/memory/overview.py",
        "foveate/tools/toolbox.py",
        "foveate/agent/graph.py",
        "foveate/cli/__init__.py",
        "foveate/training/configs/tiny_sft.yaml",
        "foveate/evals/synthetic/world.py",
    } <= set(names)
    assert "foveate = foveate.cli:main" in entry_points


def test_wheel_imports_from_its_own_files(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    code = (
        "import foveate, foveate.cli, foveate.tools, foveate.training.config as c; "
        "print(foveate.__file__); print(sorted(c.packaged_configs()))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    first, configs = out.stdout.splitlines()[:2]
    assert first.startswith(str(target)) and "tiny_sft" in configs
