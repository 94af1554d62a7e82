"""A real one-node Slurm cluster on localhost for tests: Debian's ``slurm-wlm`` daemons with a
throw-away configuration (auth/none: a test cluster that listens on loopback only).

:func:`start` writes ``slurm.conf`` under a temp folder, starts ``slurmctld`` and ``slurmd`` as
root, waits until the node is idle and returns a :class:`Cluster` whose ``env`` points ``sbatch``
at it; :meth:`Cluster.stop` kills both daemons. Where Slurm cannot start (not root, the package
missing) :func:`unavailable` says why, and the tests skip with that reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

DAEMONS = ("slurmctld", "slurmd", "sbatch", "sinfo")


def unavailable() -> str | None:
    """Why a test cluster cannot start here, or ``None``."""
    missing = [d for d in DAEMONS if shutil.which(d) is None]
    if missing:
        return f"Slurm is not installed ({', '.join(missing)} missing): apt-get install slurm-wlm"
    if os.geteuid() != 0:
        return "a test Slurm cluster runs its daemons as root; this test runs as another user"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """A running test cluster: its folder and the environment that reaches it."""

    root: Path
    env: dict[str, str]

    def stop(self) -> None:
        """Kill slurmd and slurmctld (their pid files), waiting until they are gone."""
        for name in ("slurmd", "slurmctld"):
            pidfile = self.root / f"{name}.pid"
            try:
                pid = int(pidfile.read_text().strip())
            except (OSError, ValueError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)


def start(root: Path, cpus: int = 2) -> Cluster:
    """Configure and start a one-node cluster under ``root``; RuntimeError when it does not come up."""
    node = socket.gethostname().split(".")[0]
    for sub in ("state", "spool", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    conf = root / "slurm.conf"
    conf.write_text(
        "\n".join(
            [
                "ClusterName=provisiontest",
                f"SlurmctldHost={node}(127.0.0.1)",
                f"SlurmctldPort={_free_port()}",
                f"SlurmdPort={_free_port()}",
                "AuthType=auth/none",
                "CredType=cred/none",
                "SlurmUser=root",
                "SlurmdUser=root",
                f"StateSaveLocation={root / 'state'}",
                f"SlurmdSpoolDir={root / 'spool'}",
                f"SlurmctldPidFile={root / 'slurmctld.pid'}",
                f"SlurmdPidFile={root / 'slurmd.pid'}",
                f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
                f"SlurmdLogFile={root / 'log' / 'slurmd.log'}",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "SchedulerType=sched/builtin",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core",
                "ReturnToService=2",
                "MpiDefault=none",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                f"NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN",
                f"PartitionName=test Nodes={node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8",
                "",
            ]
        ),
        encoding="utf-8",
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    cluster = Cluster(root, env)
    try:
        subprocess.run(["slurmctld", "-c", "-i"], env=env, check=True, timeout=30, capture_output=True)
        subprocess.run(["slurmd", "-N", node], env=env, check=True, timeout=30, capture_output=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = subprocess.run(
                ["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True, timeout=10
            ).stdout.strip()
            if state in ("idle", "mix", "alloc"):
                return cluster
            time.sleep(0.3)
        log = (root / "log" / "slurmctld.log").read_text(errors="replace")[-800:]
        raise RuntimeError(f"the test Slurm node did not become idle (sinfo: {state!r}); slurmctld log: {log}")
    except BaseException:
        cluster.stop()
        raise
