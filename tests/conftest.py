"""Shared fixtures. Fixture modules live in tests/fixtures/ and are imported here."""

from __future__ import annotations

import importlib.abc
import logging
import os
import sys

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Under pytest-xdist every worker would start one torch thread per core: give each its share instead
# (set before torch is imported; subprocesses that tests start inherit it).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))


class _NoBareNames(importlib.abc.MetaPathFinder):
    """The repository root is on sys.path in tests, so ``import memory`` would load the folder a second
    time, outside the installed ``foveate`` package; users have no such path. Refuse it loudly."""

    BARE = frozenset({"agent", "tools", "memory", "training", "evals"})

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.BARE:
            raise ModuleNotFoundError(
                f"import foveate.{name}, not {name}: the parts install under the foveate package"
            )
        return None


sys.meta_path.insert(0, _NoBareNames())

from tests.fixtures.models import *  # noqa: E402,F401,F403
from tests.fixtures.videos import *  # noqa: E402,F401,F403
from tests.fixtures.worlds import *  # noqa: E402,F401,F403


@pytest.fixture(autouse=True)
def _fail_on_logged_errors(caplog):
    """A test that logs at ERROR has swallowed a failure somewhere: fail it."""
    yield
    errors = [
        r for r in caplog.get_records("call") if r.levelno >= logging.ERROR and not getattr(r, "expected", False)
    ]
    if errors:
        pytest.fail("logged at ERROR: " + "; ".join(r.getMessage() for r in errors))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own FOVEATE_CACHE so tests never share or pollute ~/.cache."""
    monkeypatch.setenv("FOVEATE_CACHE", str(tmp_path_factory.mktemp("cache")))
