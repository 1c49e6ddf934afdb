"""Ingest benchmark: overview throughput vs a full decode of the same file, and peak memory.

Each phase runs in a fresh process so its peak RSS (``ru_maxrss``) is its own.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

import av
import numpy as np


def _overview_phase(path: str, queue) -> None:
    from memory.config import IngestConfig
    from memory.overview import build_overview
    from memory.probe import probe

    start = time.perf_counter()
    info = probe(path)
    with tempfile.TemporaryDirectory() as tmp:
        ov = build_overview(path, info, IngestConfig(embed=False), Path(tmp))
    queue.put({"seconds": time.perf_counter() - start, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "duration_s": info.duration_seconds, "segments": len(ov.segments), "cuts": len(ov.cuts_seconds),
               "motion_source": ov.motion_source})


def _full_decode_phase(path: str, queue) -> None:
    start = time.perf_counter()
    frames = 0
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            frame.to_ndarray(format="rgb24")
            frames += 1
    queue.put({"seconds": time.perf_counter() - start, "frames": frames,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def _run(target, path: str) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(path, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def bench_ingest(path: str | Path) -> dict:
    """Overview seconds, times real-time, full-decode seconds, their ratio, peak RSS of each."""
    path = str(path)
    ov = _run(_overview_phase, path)
    full = _run(_full_decode_phase, path)
    return {"video": path, "duration_s": round(ov["duration_s"], 2), "motion_source": ov["motion_source"],
            "overview_s": round(ov["seconds"], 3), "overview_x_realtime": round(ov["duration_s"] / ov["seconds"], 1),
            "overview_peak_rss_mb": round(ov["peak_rss_mb"], 1), "full_decode_s": round(full["seconds"], 3),
            "full_decode_frames": full["frames"], "full_decode_peak_rss_mb": round(full["peak_rss_mb"], 1),
            "speedup_vs_full_decode": round(full["seconds"] / ov["seconds"], 2), "segments": ov["segments"], "cuts": ov["cuts"]}


def make_pan_video(path: str | Path, minutes: float, width: int = 1280, height: int = 720, fps: int = 30, seed: int = 0) -> Path:
    """A test video with continuous camera motion (a textured world panned in varying directions)."""
    rng = np.random.default_rng(seed)
    tex = (rng.random((height // 16 + 64, width // 16 + 64, 3)) * 255).astype(np.uint8).repeat(16, 0).repeat(16, 1)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "28"}
        x = y = 0.0
        for i in range(int(minutes * 60 * fps)):
            angle = (i // (fps * 5)) * 1.3  # change direction every 5 s
            x = (x + 4 * np.cos(angle)) % 1000
            y = (y + 4 * np.sin(angle)) % 1000
            xi, yi = int(x) % (tex.shape[1] - width), int(y) % (tex.shape[0] - height)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(tex[yi:yi + height, xi:xi + width]), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return Path(path)
