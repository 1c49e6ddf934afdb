"""One-line messages for mistakes that used to print a traceback or the same error many times."""

from __future__ import annotations

import os
import subprocess
import sys


def _foveate(*args, timeout=120, env=None):
    return subprocess.run(
        [sys.executable, "-m", "foveate.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_more_than_ten_options_is_a_usage_error(cuts_video):
    options = [arg for i in range(11) for arg in ("--option", f"choice {i}")]
    r = _foveate("ask", cuts_video.path, "Which?", *options, "--controller", "/no/such/model")
    assert r.returncode == 2 and "at most 10 options" in r.stderr and "Traceback" not in r.stderr


def test_an_embedder_that_cannot_load_is_reported_once(cuts_video, tmp_path):
    empty = tmp_path / "embedder"
    empty.mkdir()
    r = _foveate("index", cuts_video.path, cuts_video.path, "--embedder", f"openclip:{empty}", "--cache-dir", tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "2 video(s) not indexed" in errors[0], r.stderr


def test_a_missing_video_is_named_before_the_models(tmp_path):
    """No model flags on a machine without the default models: the mistyped path is the one error."""
    for target in (tmp_path / "missing.mp4", tmp_path):
        r = _foveate("ask", target, "What happens?", env={"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"})
        errors = [line for line in r.stderr.splitlines() if line.startswith("error")]
        assert r.returncode == 2 and len(errors) == 1, r.stderr
        assert str(target) in errors[0] and ("no such file" in errors[0] or "is a directory" in errors[0])


def test_index_names_uncached_default_weights_in_one_line(cuts_video, tmp_path):
    r = _foveate(
        "index", cuts_video.path, "--cache-dir", tmp_path, env={"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    )
    errors = [line for line in r.stderr.splitlines() if line.startswith("error")]
    assert r.returncode == 1 and len(errors) == 1, r.stderr
    assert "not in the local cache and HF_HUB_OFFLINE is set" in errors[0] and "Failed to download" not in errors[0]
