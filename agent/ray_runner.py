"""Batch QA and indexing on a Ray cluster (``foveate batch --ray``, ``foveate index --ray``).

The driver (the command's own process) is the only writer of ``--out``. It shards the manifest by
video and hands each shard to a Ray actor, which loads the controller once, indexes the video into
the shared cache and answers the shard's questions (``concurrency`` in flight, as the local runner
does); every answered row goes back at once through a Ray queue and is appended by the driver.

A worker that dies (the process is killed, a node is lost) fails its shard: the driver takes the
rows already received, starts a fresh actor and hands it the shard's questions that have no row yet
(at most ``attempts`` tries per shard, then each left gets an error row, retried by the next run).
The driver appends an id at most once per run, so a retry never duplicates a row; a rerun after
the driver itself was killed skips the ids already in ``--out``, as the local runner does.

Each worker imports foveate: on a cluster of several machines, install the same environment on
every node (or ship it with a Ray runtime environment) and make the cache folder shared.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from foveate.agent.batch import BatchSummary, RowWriter, open_run
from foveate.agent.config import AgentConfig
from foveate.agent.records import ManifestRow, PredictionRow
from foveate.memory.config import IngestConfig

logger = logging.getLogger(__name__)

# Environment variables a worker must see as the driver does (offline mode, caches, credentials).
FORWARDED_ENV_PREFIXES = ("HF_", "FOVEATE_", "TRANSFORMERS_", "OPENAI_", "TOKENIZERS_")
REMOTE_CONTROLLERS = ("openai:", "scripted:")  # no model in the worker: no GPU wanted
LOCAL_OBJECT_STORE_BYTES = 256 * 1024**2


@dataclass(frozen=True)
class AnswerSettings:
    """What every answering worker needs (sent to each actor once)."""

    controller: str
    embedder: str
    ingest: IngestConfig = field(default_factory=IngestConfig)
    cache_dir: str | None = None
    policy: str = "agent"
    agent: AgentConfig = field(default_factory=AgentConfig)
    n_frames: int = 16
    concurrency: int = 1
    controller_options: dict = field(default_factory=dict)
    baseline_format: str = "prompt"


class Answerer:
    """A Ray actor that answers one video's questions per call (see the module doc)."""

    def __init__(self, settings: AnswerSettings) -> None:
        from foveate.agent.backends import load_controller

        self.settings = settings
        self.controller = load_controller(settings.controller, **settings.controller_options)

    def pid(self) -> int:
        return os.getpid()

    def answer(self, shard: int, rows: list[ManifestRow], queue) -> int:
        from foveate.agent.batch import answer_rows
        from foveate.memory import ingest

        s = self.settings

        def load(video: str):
            return ingest(video, cache_root=s.cache_dir, embedder=s.embedder, config=s.ingest)

        def record(pred: PredictionRow, traj) -> None:
            queue.put((shard, pred, traj))  # blocks until the queue holds it: a returned call has delivered all

        answer_rows(
            rows, self.controller, load, record, s.policy, s.agent, s.n_frames, s.concurrency, s.baseline_format
        )
        return len(rows)


class Indexer:
    """A Ray actor that loads the embedder once and indexes videos into the shared cache."""

    def __init__(self, embedder: str | None, cache_dir: str | None, config: IngestConfig) -> None:
        from foveate.memory import load_embedder

        self.embedder = load_embedder(embedder) if embedder else None
        self.cache_dir, self.config = cache_dir, config

    def index(self, video: str) -> dict:
        from foveate.memory import ingest
        from foveate.memory.indexing import index_report

        embed = self.embedder is not None
        config = self.config.model_copy(update={"embed": embed})
        return index_report(
            video, lambda v: ingest(v, cache_root=self.cache_dir, embedder=self.embedder, config=config)
        )


def _forwarded_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}


class _Cluster:
    """``ray.init`` on entry (a local cluster of ``workers`` CPUs without an address, unless RAY_ADDRESS names
    one), ``ray.shutdown`` on exit; the actors made here are killed on exit either way."""

    def __init__(self, address: str | None, workers: int | None) -> None:
        self.address, self.workers, self.actors = address, workers, []

    def __enter__(self) -> _Cluster:
        import ray

        self.started = not ray.is_initialized()
        if self.started:
            local = self.address is None and not os.environ.get("RAY_ADDRESS")
            ray.init(
                address=self.address,
                num_cpus=(self.workers or os.cpu_count() or 1) if local else None,
                # rows and trajectories are small: a local cluster needs little shared memory (CI has little)
                object_store_memory=LOCAL_OBJECT_STORE_BYTES if local else None,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
                runtime_env={"env_vars": _forwarded_env()},
            )
        return self

    def resources(self) -> dict:
        import ray

        return ray.cluster_resources()

    def __exit__(self, *exc) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
        if self.started:
            ray.shutdown()


def run_batch_ray(
    rows: list[ManifestRow],
    out: Path,
    settings: AnswerSettings,
    address: str | None = None,
    workers: int | None = None,
    trace: Path | None = None,
    on_row: Callable[[PredictionRow], None] | None = None,
    attempts: int = 3,
) -> BatchSummary:
    """:func:`foveate.agent.batch.run_batch` on a Ray cluster: one shard per video, ``workers`` actors at once
    (default: one per CPU of the cluster, or one per GPU for a local model on a cluster with GPUs)."""
    import ray
    from ray.util.queue import Queue

    summary, by_video = open_run(rows, out)
    if not by_video:
        return summary
    shards = list(by_video.values())
    record = RowWriter(out, summary, trace, on_row)
    written = record.written

    with _Cluster(address, workers) as cluster:
        resources = cluster.resources()
        gpus = int(resources.get("GPU", 0))
        local_model = not settings.controller.startswith(REMOTE_CONTROLLERS)
        options = {"num_cpus": 1, "max_restarts": 0}
        n = workers or max(1, int(resources.get("CPU", 1)))
        if local_model and gpus:
            options["num_gpus"] = 1
            n = min(n, gpus)
        actor_class = ray.remote(**options)(Answerer)
        queue = Queue()

        def new_actor():
            actor = actor_class.remote(settings)
            cluster.actors.append(actor)
            return actor

        idle = [new_actor() for _ in range(min(n, len(shards)))]
        pending = deque((k, shard, 1) for k, shard in enumerate(shards))
        running: dict = {}  # call -> (actor, shard index, rows, attempt)

        def drain() -> None:
            size = queue.qsize()
            if size:
                for _, pred, traj in queue.get_nowait_batch(size):
                    record(pred, traj)

        while pending or running:
            while pending and idle:
                k, shard, attempt = pending.popleft()
                actor = idle.pop()
                running[actor.answer.remote(k, shard, queue)] = (actor, k, shard, attempt)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.2)
            drain()
            for call in ready:
                actor, k, shard, attempt = running.pop(call)
                try:
                    ray.get(call)
                    idle.append(actor)
                    continue
                except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
                    reason = " ".join(str(exc).split())[:200]
                except ray.exceptions.RayTaskError as exc:
                    reason = " ".join(str(exc.cause if hasattr(exc, "cause") else exc).split())[:200]
                drain()  # the rows it delivered before it failed count
                left = [r for r in shard if r.id not in written]
                logger.warning("shard %d (%s) failed on try %d: %s", k, shard[0].video, attempt, reason)
                ray.kill(actor)
                idle.append(new_actor())
                if not left:
                    continue
                if attempt < attempts:
                    pending.append((k, left, attempt + 1))
                else:
                    for r in left:
                        record(
                            PredictionRow(
                                id=r.id, error=f"worker failed {attempts} times: {reason}", policy=settings.policy
                            ),
                            None,
                        )
        drain()
    return summary


def index_ray(
    videos: list[Path],
    cache_dir: Path | None,
    embedder: str | None,
    config: IngestConfig = IngestConfig(),
    address: str | None = None,
    workers: int | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Index ``videos`` into the shared cache on a Ray cluster, ``workers`` at once (each loads the embedder once);
    ``on_row`` gets each report row (:func:`foveate.memory.indexing.index_report`) as it comes back."""
    import ray

    rows: list[dict] = []
    with _Cluster(address, workers) as cluster:
        n = min(len(videos), workers or max(1, int(cluster.resources().get("CPU", 1))))
        actor_class = ray.remote(num_cpus=1, max_restarts=0)(Indexer)

        def new_actor():
            actor = actor_class.remote(embedder, str(cache_dir) if cache_dir else None, config)
            cluster.actors.append(actor)
            return actor

        todo = deque(str(v) for v in videos)
        running: dict = {}
        idle = [new_actor() for _ in range(n)]
        started = time.monotonic()
        while todo or running:
            while todo and idle:
                actor = idle.pop()
                video = todo.popleft()
                running[actor.index.remote(video)] = (actor, video)
            ready, _ = ray.wait(list(running), num_returns=1)
            for call in ready:
                actor, video = running.pop(call)
                try:
                    row = ray.get(call)
                    idle.append(actor)
                except ray.exceptions.RayError as exc:  # the worker died (or could not load the embedder)
                    reason = " ".join(str(exc).split())[:300]
                    row = {"video": video, "status": "error", "error": f"{video}: worker failed: {reason}"}
                    row["seconds"] = round(time.monotonic() - started, 3)
                    ray.kill(actor)
                    idle.append(new_actor())
                rows.append(row)
                if on_row:
                    on_row(row)
    return rows
