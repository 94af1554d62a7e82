"""``--shard auto``: which slice of a preprocessing run this process does, from the scheduler.

A fleet runs one ``provision preprocess B --shard auto`` (or ``run``) per task, all on one shared
cache; each finds its ``(I, N)`` (1-based) in the environment its scheduler sets, in this order:

- a Slurm job array: ``SLURM_ARRAY_TASK_ID`` with ``SLURM_ARRAY_TASK_MIN``/``MAX``/``COUNT`` (and
  ``SLURM_ARRAY_TASK_STEP``). Ids need not start at 0 (``--array=1-8``, ``--array=0-15:2``): the
  slice is the id's position in the array. An array of uneven ids (``--array=1,4,5``) is refused,
  since a task cannot tell its position from its id alone.
- a Kubernetes Indexed Job: ``JOB_COMPLETION_INDEX`` (0-based); the count is not in the pod's
  environment, so it comes from ``--shards N`` or ``PROVISION_SHARDS`` (the Job's ``completions``).
- torchrun (or any ``torch.distributed`` launcher): ``RANK`` of ``WORLD_SIZE``.

None present is a usage error naming them. The shard arithmetic itself (contiguous slices, the
last finisher merges, a resubmitted shard redoes only its slice) is the runner's, as for ``I/N``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from provision.errors import UsageError

__all__ = ["AUTO_SOURCES", "resolve_shard", "shard_from_env"]

#: What ``--shard auto`` reads, for messages and the README.
AUTO_SOURCES = (
    "a Slurm array (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN/MAX/COUNT), a Kubernetes Indexed Job "
    "(JOB_COMPLETION_INDEX with --shards N or PROVISION_SHARDS) or torchrun (RANK, WORLD_SIZE)"
)


def _int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"--shard auto: {name}={value!r} is not an integer") from None


def _slurm(env: Mapping[str, str]) -> tuple[int, int] | None:
    task = _int(env, "SLURM_ARRAY_TASK_ID")
    if task is None:
        return None
    low, high, count = (_int(env, f"SLURM_ARRAY_TASK_{k}") for k in ("MIN", "MAX", "COUNT"))
    if low is None or high is None:
        raise UsageError("--shard auto: SLURM_ARRAY_TASK_ID is set without SLURM_ARRAY_TASK_MIN/MAX")
    step = _int(env, "SLURM_ARRAY_TASK_STEP")
    if count is None:
        count = (high - low) // (step or 1) + 1
    if step is None:
        step = (high - low) // (count - 1) if count > 1 else 1
    if count < 1 or step < 1 or low + step * (count - 1) != high or (task - low) % step or not low <= task <= high:
        raise UsageError(
            f"--shard auto: Slurm array ids {low}-{high} ({count} tasks) are not evenly spaced, so task {task} "
            "cannot tell its slice; submit with --array=A-B[:S] or give --shard I/N"
        )
    return (task - low) // step + 1, count


def _indexed_job(env: Mapping[str, str], shards: int | None) -> tuple[int, int] | None:
    index = _int(env, "JOB_COMPLETION_INDEX")
    if index is None:
        return None
    count = shards if shards is not None else _int(env, "PROVISION_SHARDS")
    if count is None:
        raise UsageError(
            "--shard auto: a Kubernetes Indexed Job sets JOB_COMPLETION_INDEX but not the number of "
            "completions; give --shards N or set PROVISION_SHARDS to the Job's completions"
        )
    return index + 1, count


def _torchrun(env: Mapping[str, str]) -> tuple[int, int] | None:
    rank, world = _int(env, "RANK"), _int(env, "WORLD_SIZE")
    if rank is None or world is None:
        return None
    return rank + 1, world


def shard_from_env(env: Mapping[str, str] | None = None, shards: int | None = None) -> tuple[int, int]:
    """``(I, N)`` (1-based) from the scheduler's environment (see the module docstring)."""
    env = os.environ if env is None else env
    found = _slurm(env) or _indexed_job(env, shards) or _torchrun(env)
    if found is None:
        raise UsageError(f"--shard auto: no scheduler found; it reads {AUTO_SOURCES}; or give --shard I/N")
    index, count = found
    if not 1 <= index <= count:
        raise UsageError(f"--shard auto: slice {index} of {count} is out of range; check the scheduler's variables")
    return index, count


def resolve_shard(
    text: str | None, shards: int | None = None, env: Mapping[str, str] | None = None
) -> tuple[int, int] | None:
    """``--shard`` as given: ``None``, ``"I/N"`` or ``"auto"``."""
    from provision.preprocessing.plan import parse_shard

    if text is None:
        if shards is not None:
            raise UsageError("--shards N goes with --shard auto (a Kubernetes Indexed Job)")
        return None
    if text.strip().lower() == "auto":
        return shard_from_env(env, shards)
    if shards is not None:
        raise UsageError("--shards N goes with --shard auto; --shard I/N already says N")
    return parse_shard(text)
