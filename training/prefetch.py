"""Pretraining batches drawn and rendered in worker processes, ahead of the optimiser.

Drawing a batch (the synthetic world's frames, episodes, the chat template and the image processor)
is Python on one core: about 0.09 s of a caption batch of 16 and 0.14 s of a mixed one of the cpu
preset (``python -m foveate.training.pretrain_step --data-only [--captions]``), twice that at the gpu
preset's 32: about 34 minutes for that preset's 6,000 steps on one core, whatever the GPU's pace. With
``draw_workers: N`` N processes draw them side by side. Each step's batch then comes from a generator
of its own, seeded by (seed, step): the same batches for any N, and a resumed run needs only its step.
(With ``draw_workers: 0`` the training loop draws every batch from one generator in turn, as the cpu
preset does: on 2 cores a worker's drawing slows the forward and backward as much as it saves.)
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections.abc import Iterator

import numpy as np
import torch

_FAILED = -1


def step_rng(seed: int, step: int) -> np.random.Generator:
    """The generator that draws step ``step``'s batch when workers draw (any worker, any number of them)."""
    return np.random.default_rng([seed, 1, step])


def draw_batch(renderer, sampler, config, step: int, rng: np.random.Generator | None = None) -> list:
    """Step ``step``'s batch (rendered examples), drawn from ``rng``, or as the workers draw it: from the step's
    own generator."""
    rng = step_rng(config.seed, step) if rng is None else rng
    return [renderer(ex) for ex in sampler.draw(rng, config.batch_size, step <= config.caption_first_steps)]


def _work(config, processor, steps: range, out) -> None:
    """One worker: draw the batches of ``steps`` and put them on ``out`` as ``(step, [(kind, arrays)])``."""
    torch.set_num_threads(1)
    from foveate.training.pretrain import Renderer, TaskSampler

    try:
        renderer, sampler = Renderer(processor), TaskSampler(config)
        for step in steps:
            # numpy arrays cross the pipe by value (tensors would each hold a shared-memory handle)
            batch = [
                (r.kind, {k: v.numpy() for k, v in r.inputs.items()})
                for r in draw_batch(renderer, sampler, config, step)
            ]
            out.put((step, batch))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the parent stops on its own
        return
    except BaseException as exc:  # noqa: BLE001 — any other failure is the parent's to raise
        out.put((_FAILED, f"{type(exc).__name__}: {exc}"))


class Prefetched:
    """Iterate ``(step, items)`` for steps ``start + 1 .. config.steps`` in order, drawn by ``workers`` processes.

    Worker ``i`` draws steps ``start + 1 + i``, ``start + 1 + i + workers``, ...; at most ``depth`` batches
    per worker wait to be trained on (each worker has a queue of its own, read in its steps' turn). Use as a
    context manager: leaving it stops the workers.
    """

    def __init__(self, config, processor, start: int, workers: int, depth: int = 4) -> None:
        context = multiprocessing.get_context("spawn")
        self._queues = [context.Queue(maxsize=depth) for _ in range(workers)]
        self._start, self._end = start, config.steps
        self._processes = [
            context.Process(
                target=_work,
                args=(config, processor, range(start + 1 + i, config.steps + 1, workers), self._queues[i]),
                name=f"foveate-pretrain-batches-{i}",
                daemon=True,
            )
            for i in range(workers)
        ]
        for process in self._processes:
            process.start()
        # A worker killed halfway through putting a batch leaves half a message in its queue's pipe, and a read
        # of it never returns: each queue is read by a thread of its own, so the loop below still sees the
        # worker gone and stops with an error.
        self._arrived: list[queue.Queue] = [queue.Queue(maxsize=1) for _ in range(workers)]
        for i in range(workers):
            name = f"foveate-pretrain-batches-reader-{i}"
            threading.Thread(target=self._forward, args=(i,), name=name, daemon=True).start()

    def _forward(self, i: int) -> None:
        """Move what worker ``i`` puts onto a queue of this process (its reader thread's loop)."""
        while True:
            try:
                self._arrived[i].put(self._queues[i].get())
            except (OSError, ValueError, EOFError):  # the queue was closed
                return

    def __iter__(self) -> Iterator[tuple[int, list]]:
        from foveate.training.pretrain import Rendered

        for step in range(self._start + 1, self._end + 1):
            i = (step - self._start - 1) % len(self._processes)
            owner = self._processes[i]
            while True:
                gone = owner.exitcode is not None  # what it put before it exited is in the pipe by now
                try:
                    got, batch = self._arrived[i].get(timeout=1.0)
                except queue.Empty:
                    if gone:
                        raise RuntimeError(
                            f"the worker drawing step {step}'s batch stopped (exit code {owner.exitcode})"
                        ) from None
                    continue
                if got == _FAILED:
                    raise RuntimeError(f"drawing a pretraining batch failed: {batch}")
                break
            if got != step:
                raise RuntimeError(f"worker {i} sent step {got}'s batch where step {step}'s was due")
            yield step, [Rendered(kind, {k: torch.from_numpy(v) for k, v in inputs.items()}) for kind, inputs in batch]

    def close(self) -> None:
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        for process in self._processes:
            process.join(timeout=10)
        for q in self._queues:
            q.close()
            q.cancel_join_thread()

    def __enter__(self) -> Prefetched:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
