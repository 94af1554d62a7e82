"""``provision preprocess``, ``validate`` and ``run``: make a benchmark ready on this machine, and prove it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from provision import api
from provision.cli.common import CacheDir, Json, Quiet, Subset, Verbose, errors, print_json, settings
from provision.cli.render import (
    ItemBar,
    Stages,
    render_fetch,
    render_run,
    render_validation,
)
from provision.errors import EXIT_ACCURACY

__all__ = ["preprocess", "run", "validate"]


Shard = Annotated[
    str | None,
    typer.Option(
        "--shard",
        metavar="I/N|auto",
        help="I/N: do the I-th of N contiguous slices (machines sharing the cache); auto: I and N from a Slurm "
        "array, a Kubernetes Indexed Job or torchrun. The shard that completes the set merges.",
    ),
]


Shards = Annotated[
    int | None,
    typer.Option(
        "--shards",
        metavar="N",
        min=1,
        help="With --shard auto in a Kubernetes Indexed Job: its completions (else PROVISION_SHARDS).",
    ),
]


def preprocess(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A benchmark whose manifest names a recipe.")],
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", metavar="N", min=1, help="Worker processes (default: every core).")
    ] = None,
    shard: Shard = None,
    shards: Shards = None,
    merge: Annotated[
        bool, typer.Option("--merge", help="Assemble finished shards (automatic when the last shard finishes).")
    ] = False,
    subset: Subset = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", metavar="MODEL", help="The benchmark model whose recipe applies (default: its first model)."
        ),
    ] = None,
    cache_dir: CacheDir = None,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Run NAME's preprocessing recipe into the cache (skipped when inputs, recipe and libraries are unchanged).

    Outputs go to <cache>/preprocessed/NAME/<key>/ with a run.json record; a digest that
    does not match the manifest's expected_tree exits 3.

    Example: provision preprocess resnet50 --jobs 8 --shard 2/4   (in a Slurm array: --shard auto)
    """
    with errors():
        from provision.preprocessing.shards import resolve_shard

        bar = ItemBar(enabled=sys.stderr.isatty() and not quiet and not json_out, quiet=quiet)
        report = api.preprocess(
            name,
            settings(cache_dir),
            jobs=jobs,
            shard=resolve_shard(shard, shards),
            merge=merge,
            subset=subset,
            progress=bar,
            model=model,
        )
        if json_out:
            print_json(report.to_json())
            return
        for note in report.notes:
            bar.note(note)
        if report.state == "shard" and report.shard is not None:
            i, n = report.shard
            typer.echo(
                f"{report.benchmark}: shard {i}/{n} done ({report.items} items, {report.processed} processed now); "
                f"waiting for {', '.join(report.missing_shards)}"
            )
        else:
            typer.echo(
                f"{report.benchmark}: {report.state} ({report.items} items, {report.processed} processed now, "
                f"{report.seconds:.1f}s, key {report.key[:16]}, tree {report.digest}, expected_tree {report.pin})"
            )
        typer.echo(str(report.path))


Device = Annotated[
    str,
    typer.Option("--device", metavar="DEVICE", help="auto (cuda when the runtime sees a GPU), cpu, cuda or cuda:N."),
]


BatchSize = Annotated[int, typer.Option("--batch-size", "-b", metavar="B", min=1, help="Samples per model call.")]


Threads = Annotated[
    int | None, typer.Option("--threads", metavar="T", min=1, help="Runtime threads (default: every usable core).")
]


AllowTf32 = Annotated[
    bool, typer.Option("--allow-tf32", help="Allow TF32 matmuls/convolutions on NVIDIA GPUs (off: exact fp32).")
]


Engine = Annotated[
    str,
    typer.Option(
        "--engine",
        metavar="ENGINE",
        help="Generative benchmarks: auto (vllm when installed and a GPU is visible, else transformers), vllm or "
        "transformers.",
    ),
]


Dtype = Annotated[
    str | None,
    typer.Option(
        "--dtype",
        metavar="DTYPE",
        help="Generative benchmarks: the weights' dtype, auto float32 float16 bfloat16 (default: the manifest's).",
    ),
]


def _options(
    device: str,
    batch_size: int,
    threads: int | None,
    allow_tf32: bool,
    count: int | None = None,
    engine: str = "auto",
    dtype: str | None = None,
) -> Any:
    from provision.validation.validate import ValidateOptions

    return ValidateOptions(
        device=device,
        batch_size=batch_size,
        threads=threads,
        allow_tf32=allow_tf32,
        count=count,
        engine=engine,
        dtype=dtype,
    )


def validate(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A benchmark (fetched and preprocessed).")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model", metavar="MODEL", help="The model to run (default: the benchmark's first runnable one)."
        ),
    ] = None,
    subset: Annotated[
        str | None,
        typer.Option(
            "--subset", metavar="K", help="Validate on the preprocessed subset of this size (see 'provision run')."
        ),
    ] = None,
    count: Annotated[
        int | None,
        typer.Option(
            "--count", metavar="N", min=1, help="Only the first N samples: reports a 99% interval, not the full target."
        ),
    ] = None,
    device: Device = "auto",
    batch_size: BatchSize = 32,
    threads: Threads = None,
    allow_tf32: AllowTf32 = False,
    engine: Engine = "auto",
    dtype: Dtype = None,
    cache_dir: CacheDir = None,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Run NAME's reference model on its preprocessed data on this machine and score it with
    MLPerf's metric; exit 5 below target.

    Generative benchmarks (LLMs, Whisper) read the published dataset file and generate with
    vLLM or transformers (--engine) as the reference sets generation; every checker target
    (ROUGE, exact match, tokens per sample, gen_len windows) is judged.

    The result (accuracy, target, pass/fail, samples/s, tokens/s, energy where counters exist,
    device, runtime or engine settings, model digest) is stored beside the preprocessing run record.

    Examples: provision validate resnet50 --count 1000 | provision validate llama3.1-8b --count 200
    """
    with errors():
        bar = ItemBar(enabled=sys.stderr.isatty() and not quiet and not json_out, quiet=quiet)
        report = api.validate(
            name,
            settings(cache_dir),
            model=model,
            subset=subset,
            options=_options(device, batch_size, threads, allow_tf32, count, engine, dtype),
            progress=bar,
        )
        if json_out:
            print_json(report.to_json())
        else:
            render_validation(report)
        if not report.passed:
            raise typer.Exit(EXIT_ACCURACY)


def run(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A benchmark.")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            metavar="MODEL",
            help="The model to prepare and validate (default: the benchmark's first runnable).",
        ),
    ] = None,
    subset: Subset = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", metavar="N", min=1, help="Connections and worker processes.")
    ] = None,
    from_: Annotated[
        list[Path] | None,
        typer.Option(
            "--from", metavar="PATH", help="A file or folder to take files from first (licensed data); repeatable."
        ),
    ] = None,
    device: Device = "auto",
    batch_size: BatchSize = 32,
    threads: Threads = None,
    allow_tf32: AllowTf32 = False,
    engine: Engine = "auto",
    dtype: Dtype = None,
    revalidate: Annotated[
        bool, typer.Option("--revalidate", help="Run validation again even when a stored result matches.")
    ] = False,
    shard: Shard = None,
    shards: Shards = None,
    cache_dir: CacheDir = None,
    json_out: Json = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Make NAME ready on this machine and prove it: fetch -> verify -> preprocess -> validate.

    Each stage is skipped when its cached result is still valid; a final table lists the
    stages. --model picks the model (and its preprocessing profile, e.g. resnet50-pytorch).
    Exit 5 when validation is below target, 3/4 when fetching or verification fails.

    With --shard (I/N or auto, as for preprocess) each process preprocesses its slice; the one
    that completes the set merges and validates.

    Example: provision run resnet50 --from /data/imagenet
    """
    with errors():
        from provision.preprocessing.shards import resolve_shard

        chosen_shard = resolve_shard(shard, shards)
        stages = Stages(quiet, json_out, verbose)
        try:
            report = api.run(
                name,
                settings(cache_dir),
                model=model,
                subset=subset,
                jobs=jobs,
                from_paths=from_ or (),
                progress=stages,
                options=_options(device, batch_size, threads, allow_tf32, engine=engine, dtype=dtype),
                revalidate=revalidate,
                shard=chosen_shard,
            )
        finally:
            stages.close()
        fetched = report.fetch
        if json_out:
            print_json(report.to_json())
        else:
            if not fetched.ok:
                render_fetch(fetched, quiet)
            render_run(report)
        for line in fetched.error_lines():
            typer.echo(f"provision: error: {line}", err=True)
        if not fetched.ok:
            raise typer.Exit(fetched.exit_code)
        if report.verify is not None:
            report.verify.raise_for_errors()
        if report.validation is not None and not report.validation.passed:
            raise typer.Exit(EXIT_ACCURACY)
