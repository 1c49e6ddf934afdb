"""The ingest benchmark behind `foveate bench ingest`: the overview and the index against the
cheapest ways of touching the same file, measured in one run.

Phases, each in a fresh child process (multiprocessing ``spawn``) so that its time includes its own
imports and its peak RSS (VmHWM) is its own:

- ``demux``: read every packet (size, key flag), decode nothing: the floor for anything that
  looks at the whole stream.
- ``keyframes``: decode keyframes only (``skip_frame=NONKEY``), no conversion.
- ``plain_decode``: decode every frame, no pixel conversion, PyAV's default (slice) threading.
  This is the baseline every ratio divides by: the cheapest honest way to see every frame.
- ``rgb_decode``: the same, converting every frame to RGB (what a naive pipeline does; shown, not
  divided by, since it does extra work).
- ``uniform_seek``: 64 evenly spaced frames, each by a seek and a decode to RGB.
- ``overview``: ``foveate overview``'s work (probe, scan, thumbnails, segments) into a temp folder.
- ``index``: ``foveate index``'s work with an embedder (only when one is given), into a temp cache.

Each phase reports ``seconds`` (its work, after its imports) and ``process_seconds`` (from starting
its process to its result: interpreter, imports and work, what a user waits for).
``ratio_to_plain_decode`` divides the plain decode's process seconds by the phase's: above 1 is faster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

BASELINE = "plain_decode"
UNIFORM_FRAMES = 64


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


def _measured(fn: Callable[[], dict]) -> dict:
    rss_before, _ = _rss_mb()
    start = time.perf_counter()
    result = fn()
    return {"seconds": time.perf_counter() - start, "rss_before_mb": rss_before, "peak_rss_mb": _rss_mb()[1], **result}


def _demux_phase(path: str) -> dict:
    import av

    def run() -> dict:
        packets = size = keys = 0
        with av.open(path) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.size:
                    packets += 1
                    size += packet.size
                    keys += packet.is_keyframe
        return {"packets": packets, "bytes": size, "keyframes": keys}

    return _measured(run)


def _decode_phase(path: str, skip_frame: str | None = None, rgb: bool = False) -> dict:
    import av

    def run() -> dict:
        frames = 0
        with av.open(path) as container:
            stream = container.streams.video[0]
            if skip_frame:
                stream.codec_context.skip_frame = skip_frame
            for frame in container.decode(stream):
                if rgb:
                    frame.to_ndarray(format="rgb24")
                frames += 1
        return {"frames": frames}

    return _measured(run)


def _uniform_seek_phase(path: str, n: int = UNIFORM_FRAMES) -> dict:
    def run() -> dict:
        from foveate.memory.frames import frames_at
        from foveate.memory.probe import probe

        info = probe(path)
        times = [(i + 0.5) * info.duration_seconds / n for i in range(n)]
        frames = frames_at(path, times, max_side=10_000, duration_seconds=info.duration_seconds)
        return {"frames": len(frames)}

    return _measured(run)


def _overview_phase(path: str, profile: bool = False, threads: int = 2) -> dict:
    """Probe + scan (timeline, cuts, keyframe thumbnails) + segments; no embeddings."""
    import tempfile

    from foveate.memory.config import IngestConfig
    from foveate.memory.overview import build_overview
    from foveate.memory.probe import probe

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()

    def run() -> dict:
        info = probe(path)
        with tempfile.TemporaryDirectory() as tmp:
            ov = build_overview(info.path, info, IngestConfig(embed=False, decode_threads=threads), Path(tmp))
        return {
            "duration_s": info.duration_seconds,
            "fps": info.fps,
            "size": f"{info.width}x{info.height}",
            "codec": info.codec,
            "segments": len(ov.segments),
            "cuts": len(ov.cuts_seconds),
            "keyframes": len(ov.keyframe_seconds),
            "motion_source": ov.motion_source,
        }

    result = _measured(run)
    if profiler is not None:
        import io
        import pstats

        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
        result["profile"] = out.getvalue()
    return result


def _index_phase(path: str, embedder: str = "", threads: int = 2) -> dict:
    """What ``foveate index`` does on an empty cache: overview plus clip embeddings and their FAISS index."""
    import tempfile

    from foveate.memory.config import IngestConfig
    from foveate.memory.video_memory import ingest

    def run() -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            memory = ingest(path, cache_root=tmp, embedder=embedder, config=IngestConfig(decode_threads=threads))
            return {"clips": len(memory.clips), "clip_frames": memory.clip_frame_source}

    return _measured(run)


PHASES: dict[str, Callable[..., dict]] = {
    "demux": _demux_phase,
    "keyframes": lambda path: _decode_phase(path, skip_frame="NONKEY"),
    "plain_decode": _decode_phase,
    "rgb_decode": lambda path: _decode_phase(path, rgb=True),
    "uniform_seek": _uniform_seek_phase,
    "overview": _overview_phase,
    "index": _index_phase,
}


def _child(target: str, path: str, kwargs: dict, conn) -> None:
    try:
        conn.send(("ok", PHASES[target](path, **kwargs)))
    except BaseException as exc:  # noqa: BLE001  (reported to the parent as one line)
        conn.send(("error", f"{exc.__class__.__name__}: {' '.join(str(exc).split())}"))
    finally:
        conn.close()


def run_phase(target: str, path: str, **kwargs) -> dict:
    """Run phase ``target`` on ``path`` in a fresh spawned process; returns its result dict or raises RuntimeError."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(target, path, kwargs, child))
    started = time.perf_counter()
    proc.start()
    child.close()
    try:
        status, payload = parent.recv()  # EOFError if the child died without a word (killed, OOM)
    except EOFError:
        proc.join()
        raise RuntimeError(f"{target} process died (exit code {proc.exitcode})") from None
    payload_seconds = time.perf_counter() - started
    proc.join()
    if status != "ok":
        raise RuntimeError(payload)
    return {**payload, "process_seconds": payload_seconds}


def bench_ingest(
    path: str | Path,
    profile: bool = False,
    threads: int | None = None,
    embedder: str | None = None,
    progress: Callable[[str], None] | None = None,
    repeat: int = 1,
) -> dict:
    """Every phase on ``path`` in one run: seconds, peak RSS, and each phase's ratio to the plain decode.

    ``threads``: the overview's ``decode_threads`` (default: IngestConfig's); ``embedder``: a spec
    for the index phase (skipped without one). With ``repeat`` > 1 every phase runs that many times,
    in rounds (each round runs every phase once, so a slow spell of the machine hits all phases
    alike), and each phase reports its fastest run, the usual way to time on a shared machine;
    ``process_seconds_runs`` lists them all.
    """
    from foveate.memory.config import IngestConfig

    path = str(Path(path).resolve())
    threads = IngestConfig().decode_threads if threads is None else threads
    kwargs = {
        "overview": {"profile": profile, "threads": threads},
        "index": {"embedder": embedder, "threads": threads},
    }
    runs: dict[str, list[dict]] = {}
    for round_ in range(repeat):
        for name in PHASES:
            if name == "index" and not embedder:
                continue
            if progress is not None:
                progress(name if repeat == 1 else f"{name} (round {round_ + 1} of {repeat})")
            runs.setdefault(name, []).append(run_phase(name, path, **kwargs.get(name, {})))
    phases = {name: min(done, key=lambda p: p["process_seconds"]) for name, done in runs.items()}
    base = phases[BASELINE]["process_seconds"]
    ov = phases["overview"]
    result = {
        "video": path,
        "codec": ov["codec"],
        "size": ov["size"],
        "fps": round(ov["fps"], 3),
        "duration_s": round(ov["duration_s"], 2),
        "frames": phases[BASELINE]["frames"],
        "motion_source": ov["motion_source"],
        "overview_threads": threads,
        "embedder": embedder,
        "baseline": BASELINE,
        "repeat": repeat,
        "segments": ov["segments"],
        "cuts": ov["cuts"],
        "keyframes": ov["keyframes"],
        "phases": {
            name: {
                "seconds": round(p["seconds"], 4),
                "process_seconds": round(p["process_seconds"], 4),
                "process_seconds_runs": [round(r["process_seconds"], 4) for r in runs[name]],
                "ratio_to_plain_decode": round(base / p["process_seconds"], 4),
                "x_realtime": round(ov["duration_s"] / p["process_seconds"], 2),
                "peak_rss_mb": round(p["peak_rss_mb"], 1),
                "rss_after_imports_mb": round(p["rss_before_mb"], 1),
            }
            for name, p in phases.items()
        },
    }
    if "index" in phases:
        result["clips"], result["clip_frames"] = phases["index"]["clips"], phases["index"].get("clip_frames")
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


def bench_retrieval(
    path: str | Path,
    embedder: str,
    queries: int = 32,
    k: int = 5,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    embed_max_frames: int | None = None,
) -> dict:
    """The coarse clip index (at most ``embed_max_frames`` keyframes embedded when it is built,
    default ``FIRST_ANSWER_MAX_FRAMES`` as `foveate ask` builds it; the rest where searches land) against the full one
    (every keyframe embedded), both built from keyframes on ``path`` in this process, in temp caches.

    Queries are ``queries`` frames at seeded random times, embedded as images; the clip holding
    each time is the right answer; each query meets the coarse index as it was built (a first
    question on a fresh video). Reports each index's build seconds and keyframes embedded, and per
    search: recall@k of the right clip under each index (and under the coarse one unrefined), the
    share of the full index's top ``k`` the coarse search returns, top-1 agreement, and the seconds
    and keyframes each coarse search spent refining.
    """
    import shutil
    import tempfile

    import numpy as np

    from foveate.memory import IngestConfig, ingest, load_embedder
    from foveate.memory.config import FIRST_ANSWER_MAX_FRAMES

    emb = load_embedder(embedder)
    configs = {
        "full": IngestConfig(clip_frames="keyframes"),
        "coarse": IngestConfig(clip_frames="keyframes", embed_max_frames=embed_max_frames or FIRST_ANSWER_MAX_FRAMES),
    }
    result: dict = {"video": str(path), "embedder": embedder, "queries": queries, "k": k, "seed": seed}
    with tempfile.TemporaryDirectory() as tmp:
        memories = {}
        for name, config in configs.items():
            if progress:
                progress(f"building the {name} index")
            start = time.perf_counter()
            memories[name] = memory = ingest(path, cache_root=f"{tmp}/{name}", embedder=emb, config=config)
            keyframes = memory.keyframe_embeddings
            result[name] = {
                "build_seconds": round(time.perf_counter() - start, 3),
                "clips": len(memory.clips),
                "keyframes": len(keyframes.times),
                "embedded_at_build": int(keyframes.embedded.sum()),
                "embed_max_frames": config.embed_max_frames if name == "coarse" else None,
            }
        full = memories["full"]
        times = np.sort(np.random.default_rng(seed).uniform(0, full.duration_seconds * 0.999, queries))
        vectors = emb.embed_images(full.frames_at(times, max_side=configs["full"].embed_max_side))
        shutil.copytree(f"{tmp}/coarse", f"{tmp}/pristine")
        rows = []
        for i, (t, vector) in enumerate(zip(times, vectors)):
            if progress:
                progress(f"query {i + 1}/{queries}")
            # every query meets the coarse index as it stood when built: a first question on a fresh video
            shutil.rmtree(f"{tmp}/coarse")
            shutil.copytree(f"{tmp}/pristine", f"{tmp}/coarse")
            coarse = ingest(path, cache_root=f"{tmp}/coarse", embedder=emb, config=configs["coarse"])
            truth = int(t // configs["full"].clip_seconds)
            full_ids = [h.clip_id for h in full.search_embedding(vector, k)]
            unrefined = [h.clip_id for h in coarse.search_embedding(vector, k, refine=False)]
            start = time.perf_counter()
            coarse_ids = [h.clip_id for h in coarse.search_embedding(vector, k)]
            rows.append(
                {
                    "seconds": time.perf_counter() - start,
                    "embedded": int(coarse.keyframe_embeddings.embedded.sum()) - result["coarse"]["embedded_at_build"],
                    "full_hit": truth in full_ids,
                    "coarse_hit": truth in coarse_ids,
                    "unrefined_hit": truth in unrefined,
                    "overlap": len(set(full_ids) & set(coarse_ids)) / k,
                    "top1_agree": full_ids[0] == coarse_ids[0],
                }
            )
    mean = lambda key: round(float(np.mean([r[key] for r in rows])), 4)  # noqa: E731
    result["search"] = {
        "recall_at_k_full": mean("full_hit"),
        "recall_at_k_coarse": mean("coarse_hit"),
        "recall_at_k_coarse_unrefined": mean("unrefined_hit"),
        "overlap_with_full": mean("overlap"),
        "top1_agreement": mean("top1_agree"),
        "coarse_seconds_mean": mean("seconds"),
        "coarse_seconds_max": round(max(r["seconds"] for r in rows), 4),
        "coarse_keyframes_embedded_mean": mean("embedded"),
        "coarse_keyframes_embedded_total": int(sum(r["embedded"] for r in rows)),
    }
    return result
