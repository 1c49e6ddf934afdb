"""Batch QA over a manifest: grouped by video, resumable, crash-safe appends."""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from foveate.agent.backends.base import Controller
from foveate.agent.baselines import run_baseline
from foveate.agent.config import AgentConfig
from foveate.agent.graph import answer_question
from foveate.agent.records import ManifestRow, PredictionRow, iter_predictions
from foveate.agent.trajectory import Trajectory, write_trajectories

logger = logging.getLogger(__name__)
POLICIES = ("agent", "uniform", "retrieval")


def repair_tail(path: Path) -> None:
    """Cut a partial last line left by a killed writer."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        data = f.read()
        if not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


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
    workers: int = 1,
    trace: Path | None = None,
    on_row: Callable[[PredictionRow], None] | None = None,
) -> int:
    """Answer every row whose id is not yet in ``out``; returns the number answered now."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; valid: {', '.join(POLICIES)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    repair_tail(out)
    done = {p.id for p in iter_predictions(out)}
    by_video: dict[str, list[ManifestRow]] = defaultdict(list)
    for row in rows:
        if row.id not in done:
            by_video[row.video].append(row)
    count = 0
    for video, group in by_video.items():
        try:
            memory = load_memory(video)
        except Exception as exc:  # one bad video must not stop the batch
            for row in group:
                pred = PredictionRow(id=row.id, error=str(exc).splitlines()[0], policy=policy)
                append_line(out, pred.model_dump_json())
                count += 1
                on_row and on_row(pred)
            continue

        def one(row: ManifestRow, memory: object = memory) -> PredictionRow:
            try:
                if policy == "agent":
                    traj = answer_question(memory, row.question, row.options, controller, config, qid=row.id)
                else:
                    traj = run_baseline(memory, row.question, row.options, controller, policy, n_frames, qid=row.id)
                traj.gold, traj.gold_evidence = row.answer, row.evidence
                if trace is not None:
                    write_trajectories(trace, [traj])
                return prediction_from(traj, policy)
            except Exception as exc:
                logger.warning("%s: %s", row.id, exc)
                return PredictionRow(
                    id=row.id,
                    error=f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                    policy=policy,
                )

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for pred in pool.map(one, group):
                append_line(out, pred.model_dump_json())
                count += 1
                if on_row:
                    on_row(pred)
    return count
