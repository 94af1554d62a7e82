"""``--shard auto``: the slice from a Slurm array, a Kubernetes Indexed Job or torchrun; concurrent
worker processes on one cache give the tree of ``--jobs 1``; ``run --shard``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import slurmkit
from conftest import ManifestWriter
from fleetkit import tiny_r50
from typer.testing import CliRunner

from provision import api
from provision.cli.app import app
from provision.config import Settings
from provision.errors import EXIT_USAGE, UsageError
from provision.preprocessing.shards import resolve_shard, shard_from_env

pytest.importorskip("cv2")
runner = CliRunner()


def _array(task: int, low: int, high: int, count: int, step: int | None = None) -> dict[str, str]:
    env = {
        "SLURM_ARRAY_TASK_ID": str(task),
        "SLURM_ARRAY_TASK_MIN": str(low),
        "SLURM_ARRAY_TASK_MAX": str(high),
        "SLURM_ARRAY_TASK_COUNT": str(count),
    }
    if step is not None:
        env["SLURM_ARRAY_TASK_STEP"] = str(step)
    return env


def test_slurm_arrays_need_not_start_at_zero() -> None:
    assert [shard_from_env(_array(t, 0, 3, 4)) for t in range(4)] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert [shard_from_env(_array(t, 5, 8, 4)) for t in range(5, 9)] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert shard_from_env(_array(4, 0, 6, 4, step=2)) == (3, 4)  # --array=0-6:2
    assert shard_from_env(_array(4, 0, 6, 4)) == (3, 4)  # step inferred from MIN, MAX and COUNT
    with pytest.raises(UsageError, match="not evenly spaced"):
        shard_from_env(_array(4, 1, 5, 3))  # --array=1,4,5
    with pytest.raises(UsageError, match="without SLURM_ARRAY_TASK_MIN"):
        shard_from_env({"SLURM_ARRAY_TASK_ID": "2"})


def test_indexed_jobs_and_torchrun() -> None:
    assert shard_from_env({"JOB_COMPLETION_INDEX": "0"}, shards=3) == (1, 3)
    assert shard_from_env({"JOB_COMPLETION_INDEX": "2", "PROVISION_SHARDS": "3"}) == (3, 3)
    with pytest.raises(UsageError, match="--shards N or set PROVISION_SHARDS"):
        shard_from_env({"JOB_COMPLETION_INDEX": "1"})
    with pytest.raises(UsageError, match="out of range"):
        shard_from_env({"JOB_COMPLETION_INDEX": "3"}, shards=3)
    assert shard_from_env({"RANK": "1", "WORLD_SIZE": "2"}) == (2, 2)
    # a Slurm array wins over the torchrun variables a job step may also carry
    assert shard_from_env({**_array(1, 0, 1, 2), "RANK": "0", "WORLD_SIZE": "8"}) == (2, 2)
    with pytest.raises(UsageError, match="no scheduler found"):
        shard_from_env({})
    with pytest.raises(UsageError, match="not an integer"):
        shard_from_env({"RANK": "one", "WORLD_SIZE": "2"})
    assert resolve_shard("2/4") == (2, 4) and resolve_shard(None) is None
    assert resolve_shard("AUTO", env={"RANK": "0", "WORLD_SIZE": "1"}) == (1, 1)
    with pytest.raises(UsageError, match="--shards N goes with --shard auto"):
        resolve_shard("1/2", shards=2)


def test_shard_auto_without_a_scheduler_is_a_usage_error(tmp_path: Path, write_manifest: ManifestWriter) -> None:
    tiny_r50(tmp_path, write_manifest)
    for command in ("preprocess", "run"):
        result = runner.invoke(app, [command, "tiny-r50", "--shard", "auto"])
        assert result.exit_code == EXIT_USAGE, result.output
        assert "no scheduler found" in result.output and "SLURM_ARRAY_TASK_ID" in result.output


def _worker_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "JOB_COMPLETION", "RANK", "WORLD"))}
    return {**env, **extra}


def test_concurrent_array_tasks_merge_to_the_single_process_tree(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    tiny_r50(tmp_path, write_manifest)
    assert api.fetch(["tiny-r50"], settings).ok
    one = api.preprocess("tiny-r50", settings, jobs=1)
    shutil.rmtree(settings.cache_dir / "preprocessed")
    # four real processes at once, as `sbatch --array=1-4` starts them (ids from 1)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "provision.cli",
                "preprocess",
                "tiny-r50",
                "--shard",
                "auto",
                "--jobs",
                "1",
                "--json",
            ],
            env=_worker_env(_array(task, 1, 4, 4)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for task in range(1, 5)
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        reports.append(json.loads(out))
    assert sorted(tuple(r["shard"]) for r in reports if r.get("shard")) == [(1, 4), (2, 4), (3, 4), (4, 4)]
    merged = [r for r in reports if r["state"] == "merged"]
    assert len(merged) == 1 and merged[0]["digest"] == one.digest
    assert api.preprocess("tiny-r50", settings).state == "cached"


def test_run_with_a_shard_validates_only_when_the_set_is_complete(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    tiny_r50(tmp_path, write_manifest)
    first = api.run("tiny-r50", settings, shard=(1, 2))
    stages = {s.name: s for s in first.stages}
    assert stages["preprocess"].state == "shard" and "waiting for 2-of-2" in stages["preprocess"].detail
    assert stages["validate"].state == "skipped" and "completes the set" in stages["validate"].detail
    last = api.run("tiny-r50", settings, shard=(2, 2))
    stages = {s.name: s for s in last.stages}
    assert stages["preprocess"].state == "done" and last.preprocess is not None
    assert last.preprocess.state == "merged"
    assert stages["validate"].state == "skipped"  # the tiny benchmark sets no accuracy target


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[slurmkit.Cluster]:
    """A one-node Slurm cluster on localhost for this module (skips where Slurm cannot start)."""
    why = slurmkit.unavailable()
    if why is not None:
        pytest.skip(why)
    cluster = slurmkit.start(tmp_path_factory.mktemp("slurm"))
    yield cluster
    cluster.stop()


def test_a_slurm_array_preprocesses_a_shared_cache_like_one_process(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, slurm: slurmkit.Cluster
) -> None:
    tiny_r50(tmp_path, write_manifest)
    assert api.fetch(["tiny-r50"], settings).ok
    one = api.preprocess("tiny-r50", settings, jobs=1)
    shutil.rmtree(settings.cache_dir / "preprocessed")
    script = tmp_path / "preprocess.sbatch"
    script.write_text(
        "#!/bin/bash\n"
        "#SBATCH --array=3-6\n"  # ids need not start at 0
        "#SBATCH --cpus-per-task=1\n"
        f"exec {sys.executable} -m provision.cli preprocess tiny-r50 --shard auto --jobs 1 --json "
        f"> {tmp_path}/shard-$SLURM_ARRAY_TASK_ID.json\n",
        encoding="utf-8",
    )
    env = {**slurm.env, **{k: os.environ[k] for k in ("PROVISION_CACHE", "PROVISION_MANIFESTS", "HOME")}}
    done = subprocess.run(
        ["sbatch", "--wait", "--output", f"{tmp_path}/slurm-%A_%a.out", str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    logs = " ".join(p.read_text(errors="replace") for p in tmp_path.glob("slurm-*.out"))
    assert done.returncode == 0, done.stderr + logs
    reports = [json.loads((tmp_path / f"shard-{task}.json").read_text()) for task in range(3, 7)]
    assert sorted(tuple(r["shard"]) for r in reports) == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert [r["digest"] for r in reports if r["state"] == "merged"] == [one.digest]
    assert api.preprocess("tiny-r50", settings).state == "cached"


def test_a_resubmitted_shard_recomputes_only_its_own_slice(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    tiny_r50(tmp_path, write_manifest)
    assert api.fetch(["tiny-r50"], settings).ok
    env = lambda task: _array(task, 0, 2, 3)  # noqa: E731
    done = [api.preprocess("tiny-r50", settings, shard=shard_from_env(env(t))) for t in (0, 1)]
    assert [d.processed for d in done] == [2, 2] and done[1].missing_shards == ["3-of-3"]
    # task 1 resubmitted (its node was lost after it finished): its finished part is kept
    again = api.preprocess("tiny-r50", settings, shard=shard_from_env(env(1)))
    assert (again.state, again.processed) == ("shard", 0)
    # task 2, which never finished its part (killed), processes its own 2 items only, then merges
    last = api.preprocess("tiny-r50", settings, shard=shard_from_env(env(2)))
    assert (last.state, last.processed) == ("merged", 2)
