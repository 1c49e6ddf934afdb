"""On-disk cache: ``$FOVEATE_CACHE/<fingerprint>/<part>-<key hash>/``, built under a lock.

Each part (overview, clip index, transcript) is built into a temporary folder and renamed into
place, so a reader never sees half a part; an exclusive ``flock`` per video makes a second
process that indexes the same video wait and then reuse the first one's result.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

CACHE_VERSION = 1


def cache_root(override: str | Path | None = None) -> Path:
    root = Path(override or os.environ.get("FOVEATE_CACHE") or Path.home() / ".cache" / "foveate").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def key_hash(obj) -> str:
    payload = json.dumps({"cache_version": CACHE_VERSION, "key": obj}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_part(video_dir: Path, name: str, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """Return ``(folder, built_now)`` for part ``name``, calling ``build(tmp_folder)`` if missing."""
    final = video_dir / name
    if (final / ".complete").exists():
        return final, False
    with locked(video_dir):
        if (final / ".complete").exists():  # another process built it while we waited
            return final, False
        tmp = Path(tempfile.mkdtemp(dir=video_dir, prefix=f".tmp-{name}-"))
        try:
            build(tmp)
            (tmp / ".complete").write_text("ok")
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final, True
