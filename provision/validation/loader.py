"""Prefetching batch loader: samples load in a thread pool while the model runs on the previous batch.

Threads rather than processes: the per-sample work is ``np.load``/file reads, JPEG/PNG decoding
(OpenCV, Pillow) and numpy copies, all of which release the GIL, so threads run it in parallel
without pickling every array across a process boundary (which costs about as much as the load
itself for a 600 KB image tensor) and without fork/spawn start-up and its memory.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from provision.errors import IntegrityError, NotFetchedError, UsageError

__all__ = ["Batch", "batches", "npy_loader"]

Load = Callable[[int], Sequence[np.ndarray]]


@dataclass(frozen=True)
class Batch:
    """One batch: the sample indices and, per array of a sample, the samples stacked on axis 0."""

    indices: tuple[int, ...]
    arrays: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return len(self.indices)


def _note(exc: BaseException, text: str) -> None:
    """``exc.add_note(text)`` (Python 3.11+), or the same ``__notes__`` list on 3.10."""
    if hasattr(exc, "add_note"):
        exc.add_note(text)
    else:  # pragma: no cover - Python 3.10
        notes = getattr(exc, "__notes__", None) or []
        exc.__notes__ = [*notes, text]  # type: ignore[attr-defined]


def _load_chunk(load: Load, chunk: tuple[int, ...], stop: threading.Event) -> tuple[np.ndarray, ...]:
    """Load and stack one batch in a worker thread (one task per batch keeps the pool's overhead
    per batch, not per sample, and takes the stacking copy off the consumer's thread)."""
    samples: list[Sequence[np.ndarray]] = []
    for index in chunk:
        if stop.is_set():  # the consumer has gone: start no new work
            raise CancelledError
        try:
            samples.append(load(index))
        except Exception as exc:
            _note(exc, f"while loading sample {index} (batch of samples {chunk[0]}..{chunk[-1]})")
            raise
    return _stack(chunk, samples)


def _stack(indices: tuple[int, ...], samples: list[Sequence[np.ndarray]]) -> tuple[np.ndarray, ...]:
    """Stack each array position of the samples along a new axis 0, with a one-line error on mismatch."""
    counts = {len(s) for s in samples}
    if len(counts) != 1:
        raise IntegrityError(
            f"samples {indices[0]}..{indices[-1]} return different numbers of arrays ({sorted(counts)}); "
            "every sample needs the same arrays: re-run the preprocessing"
        )
    stacked = []
    for position in range(counts.pop()):
        parts = [np.asarray(s[position]) for s in samples]
        first = parts[0]
        for index, part in zip(indices, parts, strict=True):
            if part.shape != first.shape or part.dtype != first.dtype:
                raise IntegrityError(
                    f"array {position} of sample {index} is {part.dtype}{part.shape} but of sample {indices[0]} "
                    f"{first.dtype}{first.shape}; a batch needs equal shapes: re-run the preprocessing "
                    "or use batch size 1"
                )
        stacked.append(np.stack(parts))
    return tuple(stacked)


def batches(
    load: Load,
    indices: Sequence[int],
    batch_size: int,
    *,
    workers: int = 2,
    depth: int = 2,
) -> Generator[Batch, None, None]:
    """Yield :class:`Batch` es of ``indices`` in order, loading up to ``depth`` batches ahead.

    ``load(i)`` returns sample ``i``'s arrays (one image tensor, or several token arrays); it
    runs in a pool of ``workers`` threads, one batch per task (the samples of a batch load in
    order in one thread, and are stacked there), so it must be thread-safe. Each array position
    is stacked along a new axis 0; the last batch may be short. While the consumer holds batch
    ``k``, batches ``k+1 .. k+depth`` are loading (``depth=0``: no prefetch).

    An exception from ``load`` reaches the consumer with a note naming the sample index, and
    stops the workers. Closing the iterator early (``break``, ``close()``, garbage
    collection) cancels queued loads and joins the threads; a load already running finishes first.
    """
    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}")
    if workers < 1:
        raise UsageError(f"loader workers must be at least 1, got {workers}")
    if depth < 0:
        raise UsageError(f"prefetch depth must be 0 or more, got {depth}")
    chunks = [tuple(indices[i : i + batch_size]) for i in range(0, len(indices), batch_size)]
    if not chunks:
        return
    stop = threading.Event()
    pending: deque[tuple[tuple[int, ...], Future[tuple[np.ndarray, ...]]]] = deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="provision-load")
    try:
        submitted = 0
        while pending or submitted < len(chunks):
            while submitted < len(chunks) and len(pending) <= depth:
                chunk = chunks[submitted]
                pending.append((chunk, pool.submit(_load_chunk, load, chunk, stop)))
                submitted += 1
            chunk, future = pending.popleft()
            yield Batch(chunk, future.result())
    finally:
        stop.set()
        for _, future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def npy_loader(paths: Sequence[Path], mmap: bool = False) -> Load:
    """A ``load`` for one ``.npy`` file per sample: ``load(i)`` is ``(np.load(paths[i]),)``.

    ``mmap=True`` maps the files read-only instead of reading them; the pages are then read
    when the batch is stacked, in the consumer's thread, so the default (read in the worker)
    overlaps better with inference.
    """
    mode: Literal["r"] | None = "r" if mmap else None

    def load(index: int) -> Sequence[np.ndarray]:
        path = paths[index]
        try:
            return (np.load(path, mmap_mode=mode, allow_pickle=False),)
        except FileNotFoundError as exc:
            raise NotFetchedError(
                f"sample {index}: {path} is missing; re-run 'provision preprocess'", path=str(path)
            ) from exc
        except (OSError, ValueError) as exc:
            raise IntegrityError(
                f"sample {index}: {path} is not a readable .npy file ({exc}); re-run 'provision preprocess'",
                path=str(path),
            ) from exc

    return load
