"""On-disk cache: ``<root>/<fingerprint>/<kind>-<key hash>/``, each part built once under a lock.

The root is ``$FOVEATE_CACHE``, else ``~/.cache/foveate``. A video's entry holds independent
parts: the overview (``overview-*``), one clip index per embedder and clip parameters
(``clips-*``) and the transcript (``transcript-*``), so a new embedder rebuilds only its clip
index. A part's name hashes everything it depends on (its config fields, the embedder, the
Foveate and library versions); its ``meta.json`` spells that out and is written last, so a part
is complete exactly when its ``meta.json`` matches.

Safety with several processes: a part is built in a temporary folder beside it and renamed into
place (readers never see half a part), and an exclusive ``flock`` on ``.<part>.lock`` makes a
second process that wants the same part wait, then find it built and reuse it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Bump when the layout or meaning of cached files changes.
CACHE_FORMAT = 4  # 3: overviews sampled after keyframes, with packet sizes; 4: thumbnails in one file
META_FILE = "meta.json"
_DISTRIBUTIONS = {
    "foveate": "foveate",
    "av": "av",
    "numpy": "numpy",
    "pillow": "pillow",
    "faiss": "faiss-cpu",
    "open_clip": "open_clip_torch",
    "torch": "torch",
}


def cache_root(override: str | Path | None = None) -> Path:
    """``override``, else ``$FOVEATE_CACHE``, else ``~/.cache/foveate`` (created if missing)."""
    root = Path(override or os.environ.get("FOVEATE_CACHE") or Path.home() / ".cache" / "foveate").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """Versions of Foveate and of the libraries whose output ends up in the cache."""
    versions = {}
    for name, dist in _DISTRIBUTIONS.items():
        try:
            versions[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    if versions["faiss"] == "absent":  # GPU builds ship under other distribution names
        with contextlib.suppress(ImportError):
            import faiss

            versions["faiss"] = faiss.__version__
    return versions


def part_meta(kind: str, key: dict[str, Any]) -> dict[str, Any]:
    """The full description of a part: what its name hashes and its ``meta.json`` records."""
    return {"kind": kind, "cache_format": CACHE_FORMAT, "versions": library_versions(), "key": key}


def part_name(meta: dict[str, Any]) -> str:
    payload = json.dumps(meta, sort_keys=True, default=str)
    return f"{meta['kind']}-{hashlib.sha256(payload.encode()).hexdigest()[:16]}"


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Exclusive ``flock`` on ``lock_path`` (released when the process dies, so never stale)."""
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _is_complete(folder: Path, meta: dict[str, Any]) -> bool:
    try:
        return json.loads((folder / META_FILE).read_text()) == json.loads(json.dumps(meta, default=str))
    except (OSError, ValueError):
        return False


_TEMP_FOLDER = re.compile(r"^\.(?:tmp|stale)-(?P<part>[a-z_]+-[0-9a-f]{16})-")


def _try_lock(lock_path: Path):
    """An open handle holding ``flock`` on ``lock_path``, or None if another live process holds it."""
    fh = open(lock_path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh


def clean_stale_temps(video_dir: Path) -> int:
    """Remove ``.tmp-*`` / ``.stale-*`` folders left by builders that died (SIGKILL, power loss).

    A builder holds its part's lock until its temp folder is renamed or removed, and the kernel
    releases the lock when the process dies; so a temp folder whose part lock can be taken right
    now has no live owner. Returns how many folders were removed.
    """
    removed = 0
    try:
        entries = list(video_dir.iterdir())
    except OSError:
        return 0
    for entry in entries:
        match = _TEMP_FOLDER.match(entry.name)
        if match is None or not entry.is_dir():
            continue
        handle = _try_lock(video_dir / f".{match['part']}.lock")
        if handle is None:  # its builder is alive
            continue
        try:
            shutil.rmtree(entry, ignore_errors=True)
            removed += not entry.exists()
        finally:
            handle.close()
    if removed:
        logger.info("%s: removed %d temp folder(s) left by interrupted builds", video_dir, removed)
    return removed


def discard_part(folder: Path) -> None:
    """Remove a part folder (under its lock): readers that opened it keep their files, new ones rebuild."""
    with locked(folder.parent / f".{folder.name}.lock"):
        if folder.exists():
            stale = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".stale-{folder.name}-"))
            os.replace(folder, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)


def load_part(
    video_dir: Path, kind: str, key: dict[str, Any], build: Callable[[Path], None], load: Callable[[Path], T]
) -> tuple[T, Path, bool]:
    """:func:`build_part`, then ``load(folder)``; a cached part that does not load (truncated, damaged by
    hand) is discarded with a warning and built again. Returns ``(loaded, folder, built_now)``."""
    folder, now = build_part(video_dir, kind, key, build)
    try:
        return load(folder), folder, now
    except Exception as exc:
        if now:  # freshly built and unreadable: a bug, not damage
            raise
        reason = " ".join(f"{exc.__class__.__name__}: {exc}".split())[:200]
        logger.warning("%s: cached %s part does not load (%s); rebuilding it", folder, kind, reason)
        discard_part(folder)
    folder, now = build_part(video_dir, kind, key, build)
    return load(folder), folder, now


def build_part(video_dir: Path, kind: str, key: dict[str, Any], build: Callable[[Path], None]) -> tuple[Path, bool]:
    """Return ``(folder, built_now)`` for the part ``kind`` keyed by ``key``, calling ``build(tmp)`` if needed.

    ``build`` writes its files into the empty folder ``tmp``; on success the folder gets its
    ``meta.json`` and is renamed into place. If ``build`` raises, nothing is left behind.
    """
    video_dir.mkdir(parents=True, exist_ok=True)
    meta = part_meta(kind, key)
    final = video_dir / part_name(meta)
    if _is_complete(final, meta):
        return final, False
    clean_stale_temps(video_dir)
    with locked(video_dir / f".{final.name}.lock"):
        if _is_complete(final, meta):  # another process built it while this one waited
            return final, False
        tmp = Path(tempfile.mkdtemp(dir=video_dir, prefix=f".tmp-{final.name}-"))
        try:
            build(tmp)
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
            if final.exists():  # a damaged leftover (no or stale meta.json): move it aside, then drop it
                stale = Path(tempfile.mkdtemp(dir=video_dir, prefix=f".stale-{final.name}-"))
                os.replace(final, stale / "old")
                shutil.rmtree(stale, ignore_errors=True)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    logger.debug("built cache part %s", final)
    return final, True
