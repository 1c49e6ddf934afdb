"""One-line messages for mistakes that used to print a traceback or the same error many times."""

from __future__ import annotations

import subprocess
import sys


def _foveate(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "foveate.cli", *map(str, args)], capture_output=True, text=True, timeout=timeout
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
