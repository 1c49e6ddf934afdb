"""The ingest benchmark behind `foveate bench ingest`: overview throughput against a full decode
of the same file, and peak memory.

Each phase runs in a fresh child process (multiprocessing ``spawn``), so the peak RSS it reports
(``ru_maxrss`` of that child) is that phase's alone; both phases run in the same invocation on
the same file, so the ratio compares like with like. The overview is built into a temporary
folder: the cache plays no part.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def _rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB.

    Peak is VmHWM from /proc, which starts afresh with each exec; getrusage's ru_maxrss (the
    fallback off Linux) keeps the parent's peak across fork+exec, so a child spawned from a
    large process would report the parent's figure.
    """
    import resource

    fields = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    peak = fields.get("VmHWM", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return fields.get("VmRSS", 0.0), peak


def _overview_phase(path: str, profile: bool = False, threads: int = 2) -> dict:
    """Probe + one-pass scan (timeline, cuts, keyframe thumbnails) + segments; no embeddings."""
    import tempfile

    from foveate.memory.config import IngestConfig
    from foveate.memory.overview import build_overview
    from foveate.memory.probe import probe

    rss_before, _ = _rss_mb()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    start = time.perf_counter()
    info = probe(path)
    with tempfile.TemporaryDirectory() as tmp:
        ov = build_overview(info.path, info, IngestConfig(embed=False, decode_threads=threads), Path(tmp))
    seconds = time.perf_counter() - start
    result = {
        "seconds": seconds,
        "rss_before_mb": rss_before,
        "peak_rss_mb": _rss_mb()[1],
        "duration_s": info.duration_seconds,
        "fps": info.fps,
        "size": f"{info.width}x{info.height}",
        "codec": info.codec,
        "segments": len(ov.segments),
        "cuts": len(ov.cuts_seconds),
        "keyframes": len(ov.keyframe_seconds),
        "motion_source": ov.motion_source,
    }
    if profiler is not None:
        import io
        import pstats

        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
        result["profile"] = out.getvalue()
    return result


def _full_decode_phase(path: str) -> dict:
    """Decode every frame to an RGB ndarray (PyAV with automatic frame+slice threading on all
    cores): the naive alternative."""
    import av

    rss_before, _ = _rss_mb()
    start = time.perf_counter()
    frames = 0
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            frame.to_ndarray(format="rgb24")
            frames += 1
    return {
        "seconds": time.perf_counter() - start,
        "frames": frames,
        "rss_before_mb": rss_before,
        "peak_rss_mb": _rss_mb()[1],
    }


def _child(target: str, path: str, kwargs: dict, conn) -> None:
    try:
        conn.send(("ok", globals()[target](path, **kwargs)))
    except BaseException as exc:  # noqa: BLE001  (reported to the parent as one line)
        conn.send(("error", f"{exc.__class__.__name__}: {' '.join(str(exc).split())}"))
    finally:
        conn.close()


def run_phase(target: str, path: str, **kwargs) -> dict:
    """Run ``target(path, **kwargs)`` in a fresh spawned process; returns its result dict or raises RuntimeError."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(target, path, kwargs, child))
    proc.start()
    child.close()
    try:
        status, payload = parent.recv()  # EOFError if the child died without a word (killed, OOM)
    except EOFError:
        proc.join()
        raise RuntimeError(f"{target} process died (exit code {proc.exitcode})") from None
    proc.join()
    if status != "ok":
        raise RuntimeError(payload)
    return payload


def bench_ingest(path: str | Path, profile: bool = False, threads: int | None = None) -> dict:
    """Overview seconds, times real time, full-decode seconds, their ratio, and each phase's peak RSS.

    ``threads``: the overview's ``decode_threads`` (default: IngestConfig's).
    """
    from foveate.memory.config import IngestConfig

    path = str(Path(path).resolve())
    threads = IngestConfig().decode_threads if threads is None else threads
    ov = run_phase("_overview_phase", path, profile=profile, threads=threads)
    full = run_phase("_full_decode_phase", path)
    result = {
        "video": path,
        "codec": ov["codec"],
        "size": ov["size"],
        "fps": round(ov["fps"], 3),
        "duration_s": round(ov["duration_s"], 2),
        "motion_source": ov["motion_source"],
        "overview_threads": threads,
        "overview_s": round(ov["seconds"], 4),
        "overview_x_realtime": round(ov["duration_s"] / ov["seconds"], 1),
        "full_decode_s": round(full["seconds"], 4),
        "full_decode_frames": full["frames"],
        "full_decode_fps": round(full["frames"] / full["seconds"], 1),
        "speedup_vs_full_decode": round(full["seconds"] / ov["seconds"], 2),
        "overview_peak_rss_mb": round(ov["peak_rss_mb"], 1),
        "overview_rss_after_imports_mb": round(ov["rss_before_mb"], 1),
        "full_decode_peak_rss_mb": round(full["peak_rss_mb"], 1),
        "segments": ov["segments"],
        "cuts": ov["cuts"],
        "keyframes": ov["keyframes"],
    }
    if profile:
        result["overview_profile"] = ov["profile"]
    return result


def make_synthetic_video(
    path: str | Path,
    minutes: float = 10.0,
    width: int = 1280,
    height: int = 720,
    fps: int = 30,
    preset: str = "veryfast",
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write an H.264 test video with continuous camera motion.

    A smooth random world (blobs plus fine texture) is panned at 2-6 px/frame, changing direction
    every 5 s; every 60 s the camera jumps to a fresh world (a hard cut); a bright square moves
    on its own. Frames are made one at a time, so memory stays flat for any length.
    ``progress(done, total)`` is called once per second of video.
    """
    import av
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    world_h, world_w = height * 2, width * 2

    def world(k: int) -> np.ndarray:
        r = np.random.default_rng(seed * 1000 + k)
        blobs = Image.fromarray((r.random((world_h // 48, world_w // 48, 3)) * 255).astype(np.uint8)).resize(
            (world_w, world_h), Image.BICUBIC
        )
        fine = (r.random((world_h // 4, world_w // 4, 1)) * 40).astype(np.int16).repeat(4, 0).repeat(4, 1)
        return np.clip(np.asarray(blobs, np.int16) + fine - 20, 0, 255).astype(np.uint8)

    n_frames = int(round(minutes * 60 * fps))
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": preset, "crf": "23"}
        x = y = 0.0
        scene = world(0)
        for i in range(n_frames):
            t = i / fps
            if i and i % (60 * fps) == 0:
                scene, x, y = (
                    world(i // (60 * fps)),
                    float(rng.integers(0, world_w - width)),
                    float(rng.integers(0, world_h - height)),
                )
            angle, speed = (int(t // 5) * 2.4) % (2 * np.pi), 2 + 4 * ((int(t // 5) * 7) % 5) / 4
            x, y = (x + speed * np.cos(angle)) % (world_w - width), (y + speed * np.sin(angle)) % (world_h - height)
            frame = scene[int(y) : int(y) + height, int(x) : int(x) + width].copy()
            sx, sy = int((0.5 + 0.4 * np.sin(t / 3)) * (width - 80)), int((0.5 + 0.4 * np.cos(t / 4)) * (height - 80))
            frame[sy : sy + 80, sx : sx + 80] = (250, 240, 30)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            if progress is not None and (i + 1) % fps == 0:
                progress(i + 1, n_frames)
        out.mux(stream.encode())
    return Path(path)
