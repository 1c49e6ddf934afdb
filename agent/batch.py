"""Batch QA over a manifest: grouped by video, resumable, crash-safe appends.

The predictions file is append-only; the final answer for an id is its LAST row. A rerun skips
ids whose last row succeeded and retries the ones whose last row is an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from foveate.agent.backends.base import Controller
from foveate.agent.config import AgentConfig
from foveate.agent.records import ManifestRow, PredictionRow, iter_predictions

if TYPE_CHECKING:
    from foveate.agent.trajectory import Trajectory

logger = logging.getLogger(__name__)
POLICIES = ("agent", "uniform", "retrieval")
BASELINE_FORMATS = ("prompt", "episode")  # how the baselines show their frames (agent/baselines.py)


# Fields every prediction row has and no manifest row has: a file holding "question" rows without
# them is a manifest, and appending predictions to it would corrupt it.
PREDICTION_ONLY_FIELDS = frozenset({"frames_used", "tool_calls", "tokens_in", "tokens_out", "latency_s", "error"})


class OutputLocked(Exception):
    """Another process holds the predictions file's lock."""

    def __init__(self, out: Path, pid: int | None) -> None:
        holder = f"pid {pid}" if pid else "another process"
        super().__init__(f"{out}: another batch run is writing it ({holder} holds {lock_path_for(out)})")
        self.out, self.pid = out, pid


@dataclass
class BatchSummary:
    """What one run did: rows answered and failed now, rows skipped because an earlier run answered them."""

    answered: int = 0
    failed: int = 0
    skipped: int = 0


def lock_path_for(out: Path) -> Path:
    return out.with_name(out.name + ".lock")


def _lock_holder(lock_path: Path) -> int | None:
    try:
        return int(lock_path.read_text().strip())
    except (OSError, ValueError):  # not yet written by the holder, or gone
        return None


@contextlib.contextmanager
def lock_output(out: Path, wait: bool = False, on_wait: Callable[[int | None], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``out`` (a ``flock`` on ``OUT.lock``, which records the holder's pid).

    Two runs appending to one file would answer and write every id twice. Raises ``OutputLocked``
    when another process holds it, unless ``wait`` (then ``on_wait(pid)`` is called once and this blocks).
    The lock file stays behind: removing it would let a third run lock a fresh inode while the second waits.
    """
    lock_path = lock_path_for(out)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise OutputLocked(out, _lock_holder(lock_path)) from None
            if on_wait:
                on_wait(_lock_holder(lock_path))
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def check_output(out: Path, manifest: Path | None = None) -> None:
    """Raise ValueError (one line) when ``out`` cannot take predictions: a folder, not writable, the
    manifest itself, or a file holding manifest rows. Creates ``out``'s folder when missing."""
    if out.is_dir():
        raise ValueError(f"{out}: is a folder; --out takes a predictions file")
    if manifest is not None and out.exists() and out.resolve() == manifest.resolve():
        raise ValueError(f"{out}: is the manifest; write predictions to another file")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "a"):
            pass
    except OSError as exc:
        raise ValueError(f"{out}: cannot write predictions there ({exc.strerror or exc})") from None
    with open(out, "rb") as f:
        for lineno, line in enumerate(f, start=1):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and "question" in data and not PREDICTION_ONLY_FIELDS & data.keys():
                raise ValueError(
                    f"{out}:{lineno}: holds manifest rows, not predictions; write predictions to another file"
                )


def repair_tail(path: Path) -> None:
    """Cut a partial last line left by a killed writer; a complete last row that only lacks its
    newline keeps its data and gets the newline."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data.endswith(b"\n"):
            return
        start = data.rfind(b"\n") + 1
        try:
            json.loads(data[start:])
        except ValueError:
            f.truncate(start)
        else:
            f.write(b"\n")


def final_rows(out: Path) -> dict[str, PredictionRow]:
    """The last row of every id in ``out``: the one that counts."""
    return {p.id: p for p in iter_predictions(out)}


def done_ids(out: Path) -> set[str]:
    """Ids whose last row succeeded; an id whose last row is an error is retried."""
    return {i for i, p in final_rows(out).items() if p.error is None}


def append_line(path: Path, line: str) -> None:
    """One ``write`` of a whole line to an O_APPEND descriptor: never interleaved, never half a line."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line.rstrip("\n") + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def prediction_from(traj: Trajectory, policy: str) -> PredictionRow:
    ans = traj.answer
    return PredictionRow(
        id=traj.id,
        answer=ans.text if ans else "",
        choice=ans.choice if ans else None,
        evidence=list(ans.evidence) if ans else [],
        frames_used=traj.frames_used,
        tool_calls=traj.tool_calls,
        tokens_in=traj.tokens_in,
        tokens_out=traj.tokens_out,
        latency_s=round(traj.latency_s, 3),
        policy=policy,
    )


def run_batch(
    rows: list[ManifestRow],
    out: Path,
    controller: Controller,
    load_memory: Callable[[str], object],
    policy: str = "agent",
    config: AgentConfig = AgentConfig(),
    n_frames: int = 16,
    concurrency: int = 1,
    trace: Path | None = None,
    on_row: Callable[[PredictionRow], None] | None = None,
    baseline_format: str = "prompt",
) -> BatchSummary:
    """Answer every row whose id has no successful last row in ``out`` (failed ones are retried).

    Up to ``concurrency`` questions are in flight at once, across videos, on one event loop: the
    controller is awaited (``Controller.agenerate``: an async HTTP client for ``openai:`` servers, a
    worker thread otherwise), decoding and retrieval run in worker threads. Each video is indexed
    once (``load_memory``, one video at a time, in manifest order) and shared by its questions; a
    video that cannot be loaded gets one error row per question. Rows are appended by one writer,
    each as its question finishes, so ``out`` holds every id at most once per run.

    ``baseline_format`` (uniform and retrieval): how the frames are shown (agent/baselines.py).

    Concurrent runs on one ``out`` must be kept apart by the caller (``lock_output``).
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; valid: {', '.join(POLICIES)}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    summary, by_video = open_run(rows, out)
    todo = [row for group in by_video.values() for row in group]  # a video's questions run together
    record = RowWriter(out, summary, trace, on_row)
    answer_rows(todo, controller, load_memory, record, policy, config, n_frames, concurrency, baseline_format)
    return summary


def open_run(rows: list[ManifestRow], out: Path) -> tuple[BatchSummary, dict[str, list[ManifestRow]]]:
    """Make ``out`` ready for appending (a torn last line is cut) and group by video, in manifest order, the
    rows without a successful row in it; the others are counted as skipped."""
    out.parent.mkdir(parents=True, exist_ok=True)
    repair_tail(out)
    done = done_ids(out)
    summary = BatchSummary()
    by_video: dict[str, list[ManifestRow]] = defaultdict(list)
    for row in rows:
        if row.id in done:
            summary.skipped += 1
        else:
            by_video[row.video].append(row)
    return summary, dict(by_video)


class RowWriter:
    """The one writer of a run: appends each finished row to ``out`` (its trajectory to ``trace``) and counts it
    in ``summary``, at most once per id (a retried shard may answer an id again: the first row stands)."""

    def __init__(
        self,
        out: Path,
        summary: BatchSummary,
        trace: Path | None = None,
        on_row: Callable[[PredictionRow], None] | None = None,
    ) -> None:
        self.out, self.summary, self.trace, self.on_row = out, summary, trace, on_row
        self.written: set[str] = set()

    def __call__(self, pred: PredictionRow, traj: Trajectory | None) -> None:
        from foveate.agent.trajectory import write_trajectories

        if pred.id in self.written:
            return
        self.written.add(pred.id)
        if self.trace is not None and traj is not None:
            write_trajectories(self.trace, [traj])
        append_line(self.out, pred.model_dump_json())
        if pred.error is None:
            self.summary.answered += 1
        else:
            self.summary.failed += 1
        if self.on_row:
            self.on_row(pred)


def answer_rows(
    rows: list[ManifestRow],
    controller: Controller,
    load_memory: Callable[[str], object],
    record: Callable[[PredictionRow, Trajectory | None], None],
    policy: str = "agent",
    config: AgentConfig = AgentConfig(),
    n_frames: int = 16,
    concurrency: int = 1,
    baseline_format: str = "prompt",
) -> None:
    """Answer ``rows`` (grouped by video), ``concurrency`` at a time; ``record(row, trajectory)`` gets each as it
    finishes (the trajectory is None for a question that failed), always on the calling thread."""
    batch = _Batch(rows, controller, load_memory, policy, config, n_frames, record, baseline_format)
    _run_coroutine(batch.run(concurrency))


def _run_coroutine(coro) -> None:
    """``asyncio.run(coro)``, also from a thread that already runs an event loop (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coro).result()


def _error_row(row: ManifestRow, exc: BaseException, policy: str) -> PredictionRow:
    text = str(exc)
    return PredictionRow(
        id=row.id, error=f"{exc.__class__.__name__}: {text.splitlines()[0] if text else ''}", policy=policy
    )


class _Batch:
    """The questions of one run, answered by ``concurrency`` coroutines that pull them in order."""

    def __init__(self, todo, controller, load_memory, policy, config, n_frames, record, baseline_format) -> None:
        self.todo, self.controller, self.load_memory = todo, controller, load_memory
        self.policy, self.config, self.n_frames, self.record = policy, config, n_frames, record
        self.baseline_format = baseline_format
        self.left = defaultdict(int)  # video -> its questions not yet answered (its memory is dropped at 0)
        for row in todo:
            self.left[row.video] += 1
        self.memories: dict[str, asyncio.Task] = {}

    async def run(self, concurrency: int) -> None:
        self.queue = iter(self.todo)
        self.index_lock = asyncio.Lock()  # one video indexed at a time: one embedder, its memory bounded
        workers = [asyncio.create_task(self._worker()) for _ in range(min(concurrency, len(self.todo)))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in [*workers, *self.memories.values()]:
                task.cancel()

    async def _worker(self) -> None:
        for row in self.queue:  # one iterator shared by every worker: each row is taken once
            pred, traj = await self._answer(row)
            self.record(pred, traj)
            self.left[row.video] -= 1
            if self.left[row.video] == 0:
                self.memories.pop(row.video, None)  # its last question is done: let the memory go

    async def _memory(self, video: str):
        task = self.memories.get(video)
        if task is None:
            task = self.memories[video] = asyncio.create_task(self._load(video))
        return await asyncio.shield(task)  # a cancelled question does not cancel the shared load

    async def _load(self, video: str):
        async with self.index_lock:
            return await asyncio.to_thread(self.load_memory, video)

    async def _answer(self, row: ManifestRow) -> tuple[PredictionRow, Trajectory | None]:
        from foveate.agent.baselines import run_baseline_async
        from foveate.agent.graph import answer_question_async

        try:
            memory = await self._memory(row.video)
        except Exception as exc:  # one bad video must not stop the batch
            message = (str(exc).splitlines() or [type(exc).__name__])[0]
            return PredictionRow(id=row.id, error=message, policy=self.policy), None
        try:
            if self.policy == "agent":
                traj = await answer_question_async(
                    memory, row.question, row.options, self.controller, self.config, qid=row.id
                )
            else:
                traj = await run_baseline_async(
                    memory,
                    row.question,
                    row.options,
                    self.controller,
                    self.policy,
                    self.n_frames,
                    qid=row.id,
                    baseline_format=self.baseline_format,
                    config=self.config,
                )
            traj.gold, traj.gold_evidence = row.answer, row.evidence
            return prediction_from(traj, self.policy), traj
        except Exception as exc:
            logger.warning("%s: %s", row.id, exc)
            return _error_row(row, exc, self.policy), None
