"""One download per node under torchrun: local rank 0 fetches, the node's other ranks wait for it.

Every rank of a ``torchrun`` job calling ``provision.api.fetch(names, distributed=True)`` gets the
same verified folders, but only the process with ``LOCAL_RANK=0`` downloads (pytorch#68320: left
to themselves, all eight ranks of a node fetch the same checkpoint). The others then check the
cache with the network off (``PROVISION_OFFLINE`` semantics: a file that is not there is an error
naming it, never a second download):

- when ``torch.distributed`` is initialised, the others wait at a barrier the fetching rank
  reaches when it is done (it reaches it when it fails too, so no rank hangs; the others then
  report what is missing);
- otherwise each polls the cache, waiting on its artifact locks (which the fetching rank holds
  while it writes), until the files are there or ``lock_timeout`` passes.

A shared cache (NFS) across nodes is fine: each node's rank 0 takes the artifact lock, so the
first downloads and the others find the files verified.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from provision.config import Settings

if TYPE_CHECKING:
    from provision.fetching.report import FetchReport

__all__ = ["local_rank", "node_fetch"]

#: How often a waiting rank looks at the cache again (without torch.distributed).
POLL_S = 0.5


def local_rank(env: Mapping[str, str] | None = None) -> int:
    """This process's rank on its node: ``LOCAL_RANK`` (torchrun), else ``SLURM_LOCALID``, else 0."""
    env = os.environ if env is None else env
    for name in ("LOCAL_RANK", "SLURM_LOCALID"):
        value = env.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return 0


def _dist() -> Any | None:
    try:
        import torch.distributed as dist
    except ImportError:
        return None
    return dist if dist.is_available() and dist.is_initialized() else None


def node_fetch(fetch: Callable[[Settings], FetchReport], settings: Settings) -> FetchReport:
    """Run ``fetch`` on local rank 0 only; the other ranks of the node read what it verified."""
    dist = _dist()
    offline = settings.with_(offline=True, mirrors=())
    if local_rank() == 0:
        try:
            return fetch(settings)
        finally:
            if dist is not None:
                dist.barrier()
    if dist is not None:
        dist.barrier()
        return fetch(offline)
    deadline = time.monotonic() + settings.lock_timeout
    while True:
        report = fetch(offline)
        if report.ok or time.monotonic() > deadline:
            return report
        time.sleep(POLL_S)
