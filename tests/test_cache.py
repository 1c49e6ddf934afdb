"""The on-disk cache: parts built once, keyed by what they depend on, atomic, safe across processes."""

import json
import multiprocessing as mp
import time
from pathlib import Path

import pytest

from foveate.memory import cache
from foveate.memory.cache import build_part, cache_root, part_meta, part_name


def _write(name, text="x"):
    def build(tmp: Path) -> None:
        (tmp / name).write_text(text)

    return build


def test_cache_root_from_env_or_override(tmp_path, monkeypatch):
    monkeypatch.setenv("FOVEATE_CACHE", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env" and (tmp_path / "env").is_dir()
    assert cache_root(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.delenv("FOVEATE_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "foveate"


def test_part_built_once_with_meta(tmp_path):
    folder, built = build_part(tmp_path, "overview", {"bin_seconds": 0.5}, _write("a.txt"))
    assert built and (folder / "a.txt").read_text() == "x"
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["key"] == {"bin_seconds": 0.5} and meta["kind"] == "overview"
    assert {"foveate", "av", "numpy", "faiss", "open_clip", "torch"} <= set(meta["versions"])
    again, built = build_part(tmp_path, "overview", {"bin_seconds": 0.5}, _write("a.txt", "never"))
    assert again == folder and not built and (folder / "a.txt").read_text() == "x"
    other, built = build_part(tmp_path, "overview", {"bin_seconds": 1.0}, _write("a.txt", "y"))
    assert built and other != folder and folder.exists()


def test_library_version_change_means_a_new_part(tmp_path, monkeypatch):
    first = part_name(part_meta("clips", {"k": 1}))
    versions = dict(cache.library_versions())
    monkeypatch.setattr(cache, "library_versions", lambda: {**versions, "torch": "0.0.1"})
    assert part_name(part_meta("clips", {"k": 1})) != first


def test_failed_build_leaves_nothing(tmp_path):
    def broken(tmp: Path) -> None:
        (tmp / "half.bin").write_bytes(b"123")
        raise RuntimeError("decoder died")

    with pytest.raises(RuntimeError):
        build_part(tmp_path, "clips", {"k": 1}, broken)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_damaged_part_is_rebuilt(tmp_path):
    folder, _ = build_part(tmp_path, "clips", {"k": 1}, _write("index.faiss", "old"))
    (folder / "meta.json").unlink()  # e.g. a part copied by hand, half written
    again, built = build_part(tmp_path, "clips", {"k": 1}, _write("index.faiss", "new"))
    assert built and again == folder and (folder / "index.faiss").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [folder.name]


def _slow_build_worker(root: str, log: str, out) -> None:
    def build(tmp: Path) -> None:
        with open(log, "a") as f:
            f.write("built\n")
        time.sleep(1.0)
        (tmp / "data.txt").write_text("payload")

    folder, built = build_part(Path(root), "clips", {"k": "same"}, build)
    out.put((str(folder), built, (folder / "data.txt").read_text()))


def test_two_processes_build_one_part(tmp_path):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    log = tmp_path / "builds.log"
    procs = [ctx.Process(target=_slow_build_worker, args=(str(tmp_path / "c"), str(log), out)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert log.read_text().count("built") == 1  # the second process waited, then reused
    assert len({r[0] for r in results}) == 1 and sorted(r[1] for r in results) == [False, True]
    assert all(r[2] == "payload" for r in results)
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.startswith(".tmp")]


def test_every_ingest_field_keys_exactly_one_cache_part():
    from foveate.memory.config import CACHE_PARTS, IngestConfig

    listed = [name for fields in CACHE_PARTS.values() for name in fields]
    assert sorted(listed) == sorted(IngestConfig.model_fields), (
        "add the new IngestConfig field to one CACHE_PARTS list"
    )
    config = IngestConfig()
    assert set(config.overview_key()) == CACHE_PARTS["overview"] and set(config.clips_key()) == CACHE_PARTS["clips"]


def test_temp_folders_of_dead_builders_are_cleaned_and_live_ones_kept(tmp_path):
    folder, _ = build_part(tmp_path, "clips", {"k": 1}, _write("a"))
    dead = tmp_path / f".tmp-{folder.name}-abc123"  # a builder killed mid-build: nobody holds its lock
    dead.mkdir()
    (dead / "half.bin").write_bytes(b"x" * 10)
    other = part_name(part_meta("overview", {"k": 2}))
    live = tmp_path / f".tmp-{other}-def456"
    live.mkdir()
    with cache.locked(tmp_path / f".{other}.lock"):  # a builder still at work on another part
        assert cache.clean_stale_temps(tmp_path) == 1
    assert not dead.exists() and live.exists()
    build_part(tmp_path, "clips", {"k": 3}, _write("b"))  # the next build also sweeps
    assert not live.exists()


def test_a_cached_part_that_does_not_load_is_rebuilt_with_a_warning(tmp_path, caplog):
    def load(folder: Path) -> dict:
        return json.loads((folder / "data.json").read_text())

    builds = []

    def build(tmp: Path) -> None:
        builds.append(1)
        (tmp / "data.json").write_text('{"n": 1}')

    first, folder, built = cache.load_part(tmp_path, "overview", {"k": 1}, build, load)
    assert first == {"n": 1} and built
    (folder / "data.json").write_text('{"n": ')  # truncated on disk
    with caplog.at_level("WARNING", logger="foveate.memory.cache"):
        again, folder2, built = cache.load_part(tmp_path, "overview", {"k": 1}, build, load)
    assert again == {"n": 1} and built and folder2 == folder and len(builds) == 2
    assert "does not load" in caplog.text and "rebuilding" in caplog.text
