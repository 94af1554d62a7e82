"""The prefetching batch loader: order, stacking, overlap with the consumer, errors and clean-up.

Overlap is shown with events set by the load function, never with timing thresholds.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from provision.errors import IntegrityError, NotFetchedError, UsageError
from provision.validation.loader import Batch, batches, npy_loader

WAIT = 10.0  # seconds an event may take before the test fails (only reached when broken)


def two_arrays(i: int) -> Sequence[np.ndarray]:
    return (np.full((2, 3), i, dtype=np.float32), np.array([i, 10 * i], dtype=np.int64))


def loader_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("provision-load")]


def test_order_stacking_and_short_last_batch() -> None:
    got = list(batches(two_arrays, [5, 3, 9, 1, 7], 2, workers=3))
    assert [b.indices for b in got] == [(5, 3), (9, 1), (7,)]
    assert all(isinstance(b, Batch) and len(b.arrays) == 2 for b in got)
    first = got[0]
    assert first.arrays[0].shape == (2, 2, 3) and first.arrays[0].dtype == np.float32
    np.testing.assert_array_equal(first.arrays[0][:, 0, 0], [5, 3])
    np.testing.assert_array_equal(first.arrays[1], [[5, 50], [3, 30]])
    assert got[2].arrays[0].shape == (1, 2, 3) and len(got[2]) == 1
    assert loader_threads() == []


def test_range_indices_and_empty() -> None:
    assert [b.indices for b in batches(two_arrays, range(4), 4)] == [(0, 1, 2, 3)]
    assert list(batches(two_arrays, [], 4)) == []


def test_bad_arguments() -> None:
    for kwargs in ({"batch_size": 0}, {"batch_size": 2, "workers": 0}, {"batch_size": 2, "depth": -1}):
        with pytest.raises(UsageError):
            next(batches(two_arrays, [1, 2], **kwargs))


class Recorder:
    """A load function that records which samples started and signals when given ones have."""

    def __init__(self) -> None:
        self.started: set[int] = set()
        self.lock = threading.Lock()
        self.events: dict[int, threading.Event] = {}

    def event(self, index: int) -> threading.Event:
        return self.events.setdefault(index, threading.Event())

    def __call__(self, index: int) -> Sequence[np.ndarray]:
        with self.lock:
            self.started.add(index)
        self.event(index).set()
        return (np.array([index]),)


def test_prefetch_loads_ahead_while_the_consumer_holds_a_batch() -> None:
    rec = Recorder()
    for i in range(12):
        rec.event(i)
    it = batches(rec, list(range(12)), 2, workers=2, depth=2)
    first = next(it)
    assert first.indices == (0, 1)
    # While the consumer still holds batch 0, batches 1 and 2 load...
    for i in (2, 3, 4, 5):
        assert rec.events[i].wait(WAIT), f"sample {i} was not loaded ahead"
    # ...and no further: batch 3 is only submitted when batch 1 is taken.
    assert not rec.started & {6, 7}
    assert next(it).indices == (2, 3)
    for i in (6, 7):
        assert rec.events[i].wait(WAIT), f"sample {i} was not loaded ahead"
    assert [b.indices for b in it] == [(4, 5), (6, 7), (8, 9), (10, 11)]


def test_depth_zero_loads_nothing_ahead() -> None:
    rec = Recorder()
    it = batches(rec, list(range(6)), 2, workers=2, depth=0)
    assert next(it).indices == (0, 1)
    assert rec.started == {0, 1}
    it.close()


def test_load_error_reaches_the_consumer_with_the_index_and_stops_workers() -> None:
    before = set(threading.enumerate())
    calls: list[int] = []

    def load(i: int) -> Sequence[np.ndarray]:
        calls.append(i)
        if i == 7:
            raise ValueError("corrupt sample")
        return (np.zeros(2),)

    with pytest.raises(ValueError, match="corrupt sample") as info:
        list(batches(load, list(range(100)), 4, workers=2, depth=1))
    assert any("while loading sample 7" in note for note in getattr(info.value, "__notes__", []))
    assert set(threading.enumerate()) <= before and loader_threads() == []  # no thread of ours left
    assert len(calls) < 100  # the rest was cancelled


def test_early_close_cancels_and_joins_threads() -> None:
    before = set(threading.enumerate())
    release = threading.Event()
    blocked = threading.Semaphore(0)
    calls: list[int] = []

    def slow(i: int) -> Sequence[np.ndarray]:
        calls.append(i)
        if i >= 4:
            blocked.release()
            release.wait(WAIT)
        return (np.zeros(1),)

    it = batches(slow, list(range(1000)), 4, workers=2, depth=3)
    assert next(it).indices == (0, 1, 2, 3)
    assert blocked.acquire(timeout=WAIT) and blocked.acquire(timeout=WAIT)
    # Both workers are now blocked in a load; close() cancels the queued ones and waits for
    # those two, which the timer releases (it only bounds the test: close() comes first).
    timer = threading.Timer(0.5, release.set)
    timer.start()
    it.close()
    timer.join()
    assert loader_threads() == []
    assert len(calls) == 4 + 2
    assert set(threading.enumerate()) <= before  # back to the threads there were before


def test_unequal_samples_are_integrity_errors() -> None:
    def ragged(i: int) -> Sequence[np.ndarray]:
        return (np.zeros((3, i + 1)),)

    with pytest.raises(IntegrityError, match=r"array 0 of sample 1 is float64\(3, 2\) but of sample 0 float64\(3, 1\)"):
        list(batches(ragged, [0, 1], 2))

    def uneven(i: int) -> Sequence[np.ndarray]:
        return (np.zeros(1),) * (i + 1)

    with pytest.raises(IntegrityError, match="different numbers of arrays"):
        list(batches(uneven, [0, 1], 2))
    assert loader_threads() == []


def test_npy_loader(tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.npy")
        np.save(paths[-1], np.full((3, 4, 4), i, dtype=np.float32))
    got = list(batches(npy_loader(paths), range(3), 2))
    assert got[0].arrays[0].shape == (2, 3, 4, 4)
    np.testing.assert_array_equal(got[1].arrays[0][0], np.full((3, 4, 4), 2, np.float32))
    mapped = npy_loader(paths, mmap=True)(1)[0]
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    paths[1].unlink()
    with pytest.raises(NotFetchedError, match=r"sample 1: .*1\.npy is missing") as info:
        list(batches(npy_loader(paths), range(3), 2))
    assert any("while loading sample 1" in note for note in info.value.__notes__)
    paths[0].write_bytes(b"not numpy")
    with pytest.raises(IntegrityError, match=r"sample 0: .*0\.npy is not a readable \.npy file"):
        npy_loader(paths)(0)
